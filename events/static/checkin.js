// One-tap check-in without a page reload; the forms still work without JavaScript.
(function () {
  "use strict";
  const status = document.getElementById("checkin-status");
  document.querySelectorAll("form[data-checkin]").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          headers: { Accept: "application/json" },
          body: new FormData(form),
        });
        if (!response.ok) throw new Error("failed");
        const result = await response.json();
        const group = form.closest(".checkin");
        group.querySelectorAll("button").forEach(function (b) {
          const chosen = b.closest("form").querySelector("[name=status]").value === result.status;
          b.setAttribute("aria-pressed", chosen ? "true" : "false");
          b.classList.toggle("button-secondary", !chosen);
        });
        status.textContent = "Saved: " + result.status;
      } catch (err) {
        form.submit();  // fall back to a normal post
      } finally {
        button.disabled = false;
      }
    });
  });
})();
