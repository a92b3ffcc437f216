// "Show the stations nearest to me": the phone's location, if it shares it, as ?near=lat,lon.
(function () {
  "use strict";
  var form = document.querySelector("[data-near-me]");
  if (!form || !navigator.geolocation) return;
  form.hidden = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        form.elements.near.value = pos.coords.latitude.toFixed(5) + "," + pos.coords.longitude.toFixed(5);
        form.submit();
      },
      function () { form.querySelector("[data-near-error]").hidden = false; },
      { timeout: 10000, maximumAge: 60000 }
    );
  });
})();
