// The pass countdown: minutes and seconds left, then a clear "expired" message.
(function () {
  "use strict";
  var box = document.querySelector(".countdown[data-expires]");
  if (!box) return;
  var left = box.querySelector("[data-left]");
  var end = Date.parse(box.dataset.expires);
  function tick() {
    var s = Math.max(0, Math.round((end - Date.now()) / 1000));
    left.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    if (s === 0) {
      box.classList.add("expired");
      box.textContent = box.dataset.expiredText;
      var qr = document.getElementById("pass-qr");
      if (qr) qr.hidden = true;
      return;
    }
    setTimeout(tick, 1000);
  }
  tick();
})();
