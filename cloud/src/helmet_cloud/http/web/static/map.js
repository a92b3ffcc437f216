// The staff map's streets: Leaflet (vendor/leaflet.js) over a town's tile server, for each .town-map that has one
// (data-tiles). The same stations as the grid it replaces (data-stations, from the page), each a link with its
// numbers, name and fill level in words; the colours are app.css's palette. Live updates redraw the pins
// ("live:kept", static/live.js) without moving the map. Without JavaScript or Leaflet the grid stays, and it comes
// back when the tile server sends no tile at all.
(function () {
  "use strict";
  if (!window.L) return;

  function stations(el) {
    try { return JSON.parse(el.dataset.stations || "[]"); } catch (e) { return []; }
  }

  function text(tag, cls, value) {
    var node = document.createElement(tag);
    node.className = cls;
    node.textContent = value;
    return node;
  }

  function pin(p) {
    var link = document.createElement("a");
    link.href = p.href;
    link.className = "map-marker";
    link.dataset.station = p.id;
    link.dataset.level = p.level || "none";
    link.appendChild(text("span", "map-pin " + p.cls, p.label));
    var label = text("span", "map-label", p.name);
    label.appendChild(document.createElement("br"));
    label.appendChild(document.createTextNode(p.level_word));
    link.appendChild(label);
    // Not Leaflet's own button: the link inside is what a keyboard and a screen reader reach.
    return L.marker([p.lat, p.lon], {
      icon: L.divIcon({ html: link, className: "map-icon", iconSize: [160, 76], iconAnchor: [80, 18] }),
      keyboard: false,
      interactive: false,
    });
  }

  function plain(value) {
    // Leaflet writes attributions as HTML; a town's credit is text.
    return String(value || "").replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }

  // A tile server that answers nothing (down, unreachable from here): back to the grid, which live updates then
  // replace like any other part of the page (the element is no longer kept).
  var GIVE_UP_AFTER = 4;
  function fallBack(el) {
    if (!el._leaflet) return;
    el._leaflet.map.remove();
    el._leaflet = null;
    var host = el.querySelector(".leaflet-host");
    if (host) host.remove();
    var grid = el.querySelector("svg.map");
    if (grid) grid.style.display = "";
    el.removeAttribute("data-live-keep");
    el.dataset.tilesFailed = "true";
  }

  function draw(el) {
    if (el.dataset.tilesFailed) return;
    var points = stations(el);
    if (!el._leaflet) {
      var host = document.createElement("div");
      host.className = "leaflet-host";
      host.setAttribute("role", "region");
      host.setAttribute("aria-label", el.dataset.label || "Map");
      el.appendChild(host);
      var map = L.map(host, { scrollWheelZoom: false });
      var tiles = L.tileLayer(el.dataset.tiles, { attribution: plain(el.dataset.attribution), maxZoom: 19 });
      var loaded = 0, failed = 0;
      tiles.on("tileload", function () { loaded += 1; });
      tiles.on("tileerror", function () {
        failed += 1;
        if (!loaded && failed >= GIVE_UP_AFTER) fallBack(el);
      });
      tiles.addTo(map);
      el._leaflet = { map: map, pins: L.layerGroup().addTo(map) };
      var grid = el.querySelector("svg.map");
      if (grid) grid.style.display = "none";
      if (points.length === 1) {
        map.setView([points[0].lat, points[0].lon], 16);
      } else if (points.length) {
        map.fitBounds(points.map(function (p) { return [p.lat, p.lon]; }), { padding: [60, 60], maxZoom: 17 });
      } else {
        map.setView([0, 0], 1);
      }
    } else {
      el._leaflet.map.invalidateSize();
    }
    var pins = el._leaflet.pins;
    pins.clearLayers();
    points.forEach(function (p) { pins.addLayer(pin(p)); });
    el.dataset.drawn = String(points.length);
  }

  document.querySelectorAll(".town-map[data-tiles]").forEach(function (el) {
    draw(el);
    el.addEventListener("live:kept", function () { draw(el); });
  });
})();
