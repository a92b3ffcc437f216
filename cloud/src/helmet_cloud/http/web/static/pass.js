// The pass page, live: the countdown to expiry, and the pass's state polled from .../state every 2 s until it is
// final (used up, withdrawn or expired). When the state changes, the page is fetched again, so what it shows is
// always what the server renders (also without this script).
(function () {
  "use strict";
  var root = document.querySelector("[data-pass-state]");
  if (!root) return;

  function spent(text) {
    var qr = document.getElementById("pass-qr");
    if (qr) qr.hidden = true;
    root.querySelectorAll("[data-pass-action]").forEach(function (b) { b.disabled = true; });
    var fresh = root.querySelector("[data-new-pass]");
    if (fresh) fresh.hidden = false;
    var back = root.querySelector("[data-back]");
    if (back) back.hidden = true;
    if (text) root.querySelector("[data-field='pass-status']").textContent = text;
  }

  var box = root.querySelector(".countdown[data-seconds-left]");
  if (box) {
    var left = box.querySelector("[data-left]");
    var end = Date.now() + Number(box.dataset.secondsLeft) * 1000;  // the server's count: phone clocks drift
    var tick = function () {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      left.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
      if (s === 0) {
        box.classList.add("expired");
        box.textContent = box.dataset.expiredText;
        spent(box.dataset.expiredText);
        return;
      }
      setTimeout(tick, 1000);
    };
    tick();
  }

  if (root.dataset.final === "true") return;
  var url = root.dataset.passState;
  var wait = 2000;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) {
        wait = 2000;
        if (s.key !== root.dataset.key) { window.location.reload(); return; }
        if (!s.final) setTimeout(poll, wait);
      })
      .catch(function () { wait = Math.min(wait * 2, 30000); setTimeout(poll, wait); });
  }
  setTimeout(poll, wait);
})();
