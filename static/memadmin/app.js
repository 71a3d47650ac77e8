// The only hand-written script: copy buttons and fading toasts. Everything else is plain HTML + htmx.
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done);
    } else {
      field.select();
      document.execCommand("copy");
      done();
    }
  });
  // Toasts leave on their own; role="status" has already announced them.
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
})();
