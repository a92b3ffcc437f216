// The locker's face: renders the screen helmet-edge pushes (GET /events); it decides nothing itself.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let screen = null;
  let offsetMs = 0; // the locker's clock minus the page's (the same Pi: about zero)
  // every moment this page showed, in order: {key, lang, title, at_ms (the locker decided), shown_ms (shown here)}
  window.faceLog = [];
  let lastLogged = "";
  let lastReminder = "";

  function text(id, value) { $(id).textContent = value == null ? "" : value; }

  function render(s) {
    screen = s;
    offsetMs = s.now_ms - Date.now();
    const L = s.labels;
    document.documentElement.lang = s.lang;
    document.body.dataset.mode = s.mode;
    document.body.dataset.version = s.version;
    text("station", s.station);
    text("lang", L.other_language);
    $("lang").dataset.target = s.languages.find((l) => l !== s.lang);
    $("offline").hidden = s.online;
    text("offline", L.offline);
    text("available", s.available);
    text("available-label", L.available);
    text("free", s.free);
    text("free-label", L.free);
    text("how-borrow", L.how_borrow);
    text("how-return", L.how_return);
    $("poster").hidden = !s.poster;
    if (s.poster && !$("poster").getAttribute("src")) $("poster").src = "/poster.svg";
    const m = s.moment;
    const tech = s.technician;
    $("moment").hidden = !m;
    $("idle").hidden = !!m || s.mode !== "idle";
    $("out-of-service").hidden = !!m || s.mode !== "out_of_service";
    $("technician").hidden = !!m || !tech;
    text("oos-title", L.out_of_service);
    text("oos-next", L["out_of_service.next"]);
    if (m) {
      $("moment").dataset.tone = m.tone;
      $("moment").dataset.key = m.key;
      const tiles = $("door-tiles");
      tiles.replaceChildren(...m.doors.map((d) => {
        const t = document.createElement("span");
        t.className = "tile";
        t.textContent = d;
        return t;
      }));
      text("title", m.title);
      text("also", m.also);
      text("next", m.next);
      const id = m.key + "@" + m.at_ms + "@" + s.lang;
      if (id !== lastLogged) {
        lastLogged = id;
        window.faceLog.push({ key: m.key, lang: s.lang, title: m.title, next: m.next, at_ms: m.at_ms, shown_ms: Date.now() });
      }
    }
    if (tech) {
      text("tech-title", L.technician);
      text("run-selftest", L.run_selftest);
      const st = tech.selftest;
      text("selftest", L.last_selftest + ": " + (st ? (st.summary || "") : L.never));
      $("selftest").dataset.ok = st ? String(st.ok) : "";
      text("th-slot", L.slot);
      text("th-state", L.state);
      text("th-helmet", L.helmet);
      $("slots").replaceChildren(...tech.slots.map((row) => {
        const tr = document.createElement("tr");
        for (const v of [row.slot, row.state_text + (row.fault ? " (" + row.fault + ")" : ""), row.helmet || ""]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.appendChild(td);
        }
        tr.dataset.state = row.state;
        return tr;
      }));
    }
    $("reminder").hidden = !s.reminder;
    text("reminder", s.reminder ? s.reminder.text : "");
    if (s.reminder && lastReminder !== s.reminder.text) {
      window.faceLog.push({ key: "remind.close", lang: s.lang, title: s.reminder.text, next: null, at_ms: s.reminder.at_ms, shown_ms: Date.now() });
    }
    lastReminder = s.reminder ? s.reminder.text : "";
    tick();
  }

  function tick() {
    if (!screen) return;
    const L = screen.labels;
    const now = Date.now() + offsetMs;
    const rows = screen.doors.filter((d) => !screen.moment || screen.moment.doors.includes(d.slot));
    $("countdowns").replaceChildren(...rows.map((d) => {
      const li = document.createElement("li");
      const door = L.door.replace("{n}", d.slot);
      if (d.state === "unlocking" && d.deadline_ms) {
        const s = Math.max(0, Math.ceil((d.deadline_ms - now) / 1000));
        li.textContent = door + ": " + L.open_within.replace("{s}", s);
      } else {
        li.textContent = door + ": " + L.door_open;
      }
      li.dataset.slot = d.slot;
      return li;
    }));
  }

  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  $("lang").addEventListener("click", () => { post("/language", { lang: $("lang").dataset.target }); });
  $("run-selftest").addEventListener("click", () => { post("/selftest", {}); });

  function connect() {
    const events = new EventSource("/events");
    events.onmessage = (e) => render(JSON.parse(e.data));
    events.onopen = () => { document.body.dataset.connected = "true"; };
    events.onerror = () => { document.body.dataset.connected = "false"; }; // EventSource retries by itself
  }
  setInterval(tick, 250);
  connect();
})();
