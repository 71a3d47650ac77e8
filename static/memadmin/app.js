// The only hand-written script: copy buttons, fading toasts, and keeping focus somewhere sensible after an
// htmx swap. Everything else is plain HTML + htmx. No inline script anywhere: the CSP allows 'self' only.
(function () {
  // --- copy buttons: data-copy="#field" copies a field's value, data-copy-text="..." copies that text.
  var copyBySelection = function (text, field) {
    // Plain-HTTP hosts (and refused permissions) have no async clipboard: copy through a selected field.
    var area = field || document.createElement("textarea");
    if (!field) { area.value = text; area.setAttribute("readonly", ""); area.className = "sr-only"; document.body.appendChild(area); }
    area.select();
    try { document.execCommand("copy"); } finally { if (!field) area.remove(); }
  };
  var writeText = function (text, field) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { copyBySelection(text, field); });
    }
    copyBySelection(text, field);
    return Promise.resolve();
  };
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-text]");
    if (!button) return;
    var field = button.hasAttribute("data-copy") ? document.querySelector(button.getAttribute("data-copy")) : null;
    var text = field ? field.value : button.getAttribute("data-copy-text");
    if (text === null) return;
    var label = button.textContent, name = button.getAttribute("aria-label");
    writeText(text, field).then(function () {
      button.textContent = "Copied";
      // The accessible name keeps containing the visible text (axe label-content-name-mismatch).
      if (name) button.setAttribute("aria-label", name.replace(/^Copy\b/, "Copied"));
      button.setAttribute("data-copied", "");
      setTimeout(function () {
        button.textContent = label;
        if (name) button.setAttribute("aria-label", name);
        button.removeAttribute("data-copied");
      }, 1500);
    });
  });

  // --- toasts leave on their own; role="status" has already announced them.
  var fade = function (root) {
    root.querySelectorAll(".toasts > *:not([data-fading])").forEach(function (toast) {
      toast.setAttribute("data-fading", "");
      setTimeout(function () { toast.remove(); }, 7000);
    });
  };
  document.addEventListener("DOMContentLoaded", function () { fade(document); });
  document.addEventListener("htmx:afterSettle", function () { fade(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { fade(document); });
  // A memory was deleted in place (HX-Trigger from the server): what the page counts is read again, from the
  // URL the page shows now (filters applied with htmx included). #counts is answered from counts alone.
  document.addEventListener("memories-changed", function () {
    if (document.getElementById("counts")) htmx.ajax("GET", location.href, { target: "#counts", swap: "outerHTML" });
    if (document.getElementById("results")) {
      htmx.ajax("GET", location.href, { target: "#results", swap: "innerHTML", headers: { "MemAdmin-Recount": "1" } });
    }
  });

  // --- focus after a swap: a deleted row takes the focused button with it and the browser falls back
  // to <body> (a keyboard user starts again from the top). Move it to the next row's same control, else
  // the previous row's, else the region that was swapped.
  var pending = null;
  var focusable = "a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, [tabindex]";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var row = target && target.closest ? target.closest("tr") : null;
    pending = { target: target, row: row, next: null };
    if (row) {
      var sibling = row.nextElementSibling || row.previousElementSibling;
      pending.next = sibling ? (sibling.querySelector(".actions button") || sibling.querySelector(focusable)) : null;
      pending.table = row.closest("table");
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!pending) return;
    var lost = !document.activeElement || document.activeElement === document.body || !document.activeElement.isConnected;
    var p = pending; pending = null;
    if (!lost) return;
    var to = (p.next && p.next.isConnected) ? p.next : null;
    if (!to && p.table && p.table.isConnected) {
      to = p.table.closest(".results-region, section, .card") || p.table;
    }
    if (!to && p.target && p.target.isConnected) to = p.target;
    if (!to) to = document.getElementById("main");
    if (!to.matches(focusable)) to.setAttribute("tabindex", "-1");
    to.focus({ preventScroll: false });
  });
})();

// --- bulk selection (partials/bulk_bar.html): "all on this page" ticks the rows' boxes (which join the form by
// its id), "all matching" ticks the page too, and a row unticked unticks both. Without this script the page's
// rows still go with "all on this page" (hidden inputs), and each box on its own.
document.addEventListener("change", function (event) {
  var box = event.target;
  var form = box.form;
  if (!form || form.id !== "bulk") return;
  var rows = document.querySelectorAll('input[name="m"][form="bulk"]');
  var page = form.querySelector("[data-select-page]");
  var all = form.querySelector("[data-select-all]");
  var tick = function (on) { rows.forEach(function (row) { row.checked = on; }); };
  if (box === page) {
    tick(box.checked);
    if (!box.checked && all) all.checked = false;
  } else if (box === all) {
    if (box.checked) { tick(true); if (page) page.checked = true; }
  } else if (box.name === "m" && !box.checked) {
    if (page) page.checked = false;
    if (all) all.checked = false;
  }
});

// --- the phone menu: the nav collapses behind "Menu" only when this script runs (app.css, .js rules);
// without it every section stays visible, wrapped.
document.documentElement.classList.add("js");
document.addEventListener("click", function (event) {
  var toggle = event.target.closest(".menu-toggle");
  if (!toggle) return;
  var nav = document.getElementById(toggle.getAttribute("aria-controls"));
  var open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  nav.classList.toggle("open", open);
});

// A table wider than its box scrolls inside it: keyboard users reach that scroll by focusing the box.
(function () {
  var mark = function () {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        wrap.setAttribute("tabindex", "0");
      } else if (wrap.getAttribute("tabindex") === "0") {
        wrap.removeAttribute("tabindex");
      }
    });
  };
  document.addEventListener("DOMContentLoaded", mark);
  document.addEventListener("htmx:afterSettle", mark);
  window.addEventListener("resize", mark);
})();
