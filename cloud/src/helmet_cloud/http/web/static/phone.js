// Staff and technician pages on a phone (docs/web.md, "On a phone"): the header's menu folds behind one
// button, and each table cell is labelled with its column's heading, so app.css can show a row as a card.
// Without JavaScript the menu stays open and the cards have no labels; nothing is lost, the page scrolls down.
(function () {
  "use strict";
  var header = document.querySelector("header.top");
  var toggle = header && header.querySelector(".menu-toggle");
  var menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (toggle && menu) {
    header.classList.add("folding");
    toggle.hidden = false;
    var set = function (open) {
      menu.classList.toggle("open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    };
    set(false);
    toggle.addEventListener("click", function () { set(!menu.classList.contains("open")); });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && menu.classList.contains("open")) { set(false); toggle.focus(); }
    });
  }

  // Each cell gets data-label = its column's heading (the thead's th at the same position, colspans counted).
  function label(root) {
    root.querySelectorAll("table.data").forEach(function (table) {
      var heads = [];
      var row = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
      if (!row) return;
      Array.prototype.forEach.call(row.cells, function (th) {
        for (var i = 0; i < (th.colSpan || 1); i++) heads.push(th.textContent.replace(/\s+/g, " ").trim());
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (tr) {
          var col = 0;
          Array.prototype.forEach.call(tr.cells, function (cell) {
            if (cell.colSpan > 1 && cell.colSpan >= heads.length) cell.classList.add("wide");
            else if (heads[col] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[col]);
            col += cell.colSpan || 1;
          });
        });
      });
    });
  }
  label(document);
  // Live regions (live.js) swap their content: label the fresh rows too.
  if (window.MutationObserver) {
    new MutationObserver(function (changes) {
      changes.forEach(function (c) { if (c.addedNodes.length && c.target.querySelectorAll) label(c.target); });
    }).observe(document.body, { childList: true, subtree: true });
  }
})();
