// The roster on a phone: one-tap check-in and undo without a reload, the "7 of 12 here" count
// kept current, and the name search filtering as one types. Every form and the search also
// work without JavaScript (a normal post, or ?q= on the server).
(function () {
  "use strict";
  const status = document.getElementById("checkin-status");
  const count = document.getElementById("here-count");
  const problem = document.getElementById("checkin-error");

  function showMark(group, mark) {
    group.querySelectorAll("form[data-checkin]:not([data-undo]) button").forEach(function (b) {
      const chosen = b.closest("form").querySelector("[name=status]").value === mark;
      b.setAttribute("aria-pressed", chosen ? "true" : "false");
      b.classList.toggle("button-secondary", !chosen);
    });
    const undo = group.querySelector("form[data-undo]");
    if (undo) undo.hidden = mark === null;
  }

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
        if (!response.ok) {
          const refusal = await response.json().catch(function () { return {}; });
          if (!refusal.error || !problem) throw new Error("failed");
          problem.textContent = refusal.error;  // e.g. check-in has closed since the page loaded
          problem.hidden = false;
          return;
        }
        if (problem) problem.hidden = true;
        const result = await response.json();
        const group = form.closest(".checkin");
        showMark(group, result.status);
        if (count) {
          count.textContent = result.count_text;
          count.dataset.present = result.present;
          count.dataset.expected = result.expected;
        }
        status.textContent = (result.status ? "Saved: " + result.status : "Mark removed") + ". " + result.count_text + ".";
        if (result.status === null) {
          const first = group.querySelector("form[data-checkin] button");
          if (first) first.focus();  // the undo button just hid itself
        }
      } catch (err) {
        form.submit();  // fall back to a normal post (the page then says why, if refused)
      } finally {
        button.disabled = false;
      }
    });
  });

  const filter = document.querySelector("input[data-roster-filter]");
  const summary = document.getElementById("search-result");
  if (filter) {
    filter.addEventListener("input", function () {
      const text = filter.value.trim().toLowerCase();
      let shown = 0;
      document.querySelectorAll("[data-attendance-list] > li[data-name]").forEach(function (row) {
        const match = !text || row.dataset.name.indexOf(text) !== -1;
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (summary) summary.textContent = text ? shown + " matching “" + filter.value.trim() + "”" : "";
    });
  }
})();
