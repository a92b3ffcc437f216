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
          if (fresh && !el.contains(document.activeElement)) el.innerHTML = fresh.innerHTML;
        });
        document.body.dataset.updated = String(Date.now());
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var since = document.body.dataset.watermark || "";
  var source = new EventSource("/staff/stream" + (since ? "?since=" + encodeURIComponent(since) : ""));
  source.addEventListener("open", function () {
    if (status) status.textContent = status.dataset.onText;
  });
  source.addEventListener("change", refresh);
  source.addEventListener("error", function () {
    if (status) status.textContent = status.dataset.offText;
  });
})();
