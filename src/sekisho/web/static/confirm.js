// The confirmation page: one passkey assertion, user verification required, whose
// challenge the server bound to the details shown (docs/flows/step-up.md). The WebAuthn
// JSON conversions and the POST are webauthn.js's, loaded before this file.
(function () {
  "use strict";
  const section = document.getElementById("confirm-section");
  const button = document.getElementById("confirm-button");
  if (!section || !button) { return; }
  if (!window.PublicKeyCredential) { button.disabled = true; return; }
  const base = "/api/v1/confirmations/" + section.dataset.confirmation;
  const status = document.getElementById("confirm-status");
  const error = document.getElementById("confirm-error");
  const { requestOptions, credentialJSON, post } = window.SekishoWebAuthn;

  function fail(text) {
    status.textContent = "";
    error.textContent = text;
    error.hidden = false;
    button.disabled = false;
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    error.hidden = true;
    try {
      const start = await post(base + "/options", {});
      if (!start.ok) {
        fail(start.body.error === "confirmation_used" || start.body.error === "confirmation_expired"
          ? section.dataset.expired : section.dataset.failed);
        return;
      }
      const credential = await navigator.credentials.get({ publicKey: requestOptions(start.body.publicKey) });
      const finish = await post(base + "/verify", {
        flow_id: start.body.flow_id,
        credential: credentialJSON(credential),
      });
      if (!finish.ok) { fail(section.dataset.failed); return; }
      status.textContent = section.dataset.done;
      if (finish.body.redirect_to) { window.location.assign(finish.body.redirect_to); }
    } catch (failure) {
      fail(section.dataset.failed);
    }
  });
})();
