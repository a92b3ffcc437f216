// Live staff pages: when the server says something changed, fetch this page again and swap its [data-live] regions.
// Without JavaScript the pages still work; they just need a reload.
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  var regions = document.querySelectorAll("[data-live][id]");
  if (!regions.length || !window.EventSource) return;
  var status = document.querySelector("[data-live-status]");
  var busy = false, again = false;

  // Swap a region for its fresh copy; an element marked [data-live-keep] (a drawn map) stays itself and
  // takes the fresh copy's data-* attributes, then hears "live:kept" to redraw from them.
  function swap(el, fresh) {
    var kept = [];
    el.querySelectorAll("[data-live-keep][id]").forEach(function (old) {
      var next = fresh.querySelector("#" + CSS.escape(old.id));
      if (!next) return;
      var slot = next.ownerDocument.createElement("div");
      slot.setAttribute("data-live-slot", old.id);
      next.replaceWith(slot);
      kept.push([old, next]);
    });
    el.innerHTML = fresh.innerHTML;
    kept.forEach(function (pair) {
      var old = pair[0], next = pair[1];
      var slot = el.querySelector('[data-live-slot="' + CSS.escape(old.id) + '"]');
      if (!slot) return;
      slot.replaceWith(old);
      Array.prototype.forEach.call(next.attributes, function (a) {
        if (a.name.indexOf("data-") === 0) old.setAttribute(a.name, a.value);
      });
      old.dispatchEvent(new CustomEvent("live:kept"));
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          // Leave a region alone while someone is typing or has focus inside it.
          if (fresh && !el.contains(document.activeElement)) swap(el, fresh);
        });
        document.body.dataset.updated = String(Date.now());
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  // The indicator. The server ends every stream after a while (http/web/live.py, STREAM_SECONDS) and the
  // browser reconnects within a second; EventSource reports each of those ends as an error. So "reconnecting"
  // shows only when no connection has come back for GRACE_MS, however many errors came in between.
  var GRACE_MS = 5000;
  var down = null, retry = null, wait = 1000;
  function say(state) {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = state === "on" ? status.dataset.onText : status.dataset.offText;
  }
  var since = document.body.dataset.watermark || "";
  function connect() {
    retry = null;
    var source = new EventSource("/staff/stream" + (since ? "?since=" + encodeURIComponent(since) : ""));
    source.addEventListener("open", function () {
      clearTimeout(down);
      down = null;
      wait = 1000;
      say("on");
    });
    source.addEventListener("change", function (e) {
      since = e.lastEventId || since;
      refresh();
    });
    source.addEventListener("error", function () {
      if (down === null) down = setTimeout(function () { say("reconnecting"); }, GRACE_MS);
      // An answer other than a stream (a proxy's 502, a restart's 503) closes it for good: start again, slower each time.
      if (source.readyState === EventSource.CLOSED && retry === null) {
        retry = setTimeout(connect, wait);
        wait = Math.min(wait * 2, 30000);
      }
    });
  }
  connect();
})();
