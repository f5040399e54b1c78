// The printable roster's Print button (an external script: the CSP allows no inline one).
(function () {
  "use strict";
  const button = document.querySelector("[data-print]");
  const hint = document.querySelector("[data-print-hint]");
  if (!button || typeof window.print !== "function") return;
  button.hidden = false;
  if (hint) hint.hidden = true;
  button.addEventListener("click", function () { window.print(); });
})();
