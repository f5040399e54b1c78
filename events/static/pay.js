// The payment page: tokenize the card with Stripe.js, charge it on our server,
// and let Stripe.js handle 3D Secure when the bank asks for it.
(function () {
  "use strict";
  const form = document.getElementById("payment-form");
  if (!form || typeof Stripe === "undefined") return;
  // Stripe writes its card messages in the page's language where it has it (Spanish), else the browser's.
  const language = document.documentElement.lang;
  const stripe = Stripe(form.dataset.publishableKey, { locale: ["en", "es"].includes(language) ? language : "auto" });
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const button = document.getElementById("pay-button");
  const errorBox = document.getElementById("payment-error");

  function busy(on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }
  function complete(intentId) {
    window.location.assign(form.dataset.completeUrl + "?payment_intent=" + encodeURIComponent(intentId || ""));
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.textContent = "";
    busy(true);
    try {
      const tokenResult = await stripe.createToken(card);
      if (tokenResult.error) {
        errorBox.textContent = (tokenResult.error && tokenResult.error.message) || form.dataset.msgCheckCard;
        busy(false);
        return;
      }
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": form.dataset.csrfToken },
        body: JSON.stringify({ token: tokenResult.token.id }),
      });
      const result = await response.json();
      if (result.status === "requires_action") {
        await stripe.confirmCardPayment(result.client_secret);
        complete(result.intent_id);  // the server re-reads the payment either way
        return;
      }
      if (result.status === "succeeded" || result.status === "closed") {
        complete(result.intent_id);
        return;
      }
      errorBox.textContent = result.message || form.dataset.msgNotCharged;
    } catch (err) {
      // No answer we could read (a timeout, a proxy's error page): the charge may or may not
      // have gone through, so don't say either; the server checks before charging again.
      errorBox.textContent = form.dataset.msgNotConfirmed;
    }
    busy(false);
  });
})();
