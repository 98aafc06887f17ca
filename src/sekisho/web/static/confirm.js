// The confirmation page: one passkey assertion, user verification required, whose
// challenge the server bound to the details shown (docs/flows/step-up.md). Uses the
// browser's own JSON helpers where it has them, base64url conversion otherwise.
(function () {
  "use strict";
  const section = document.getElementById("confirm-section");
  const button = document.getElementById("confirm-button");
  if (!section || !button) { return; }
  if (!window.PublicKeyCredential) { button.disabled = true; return; }
  const base = "/api/v1/confirmations/" + section.dataset.confirmation;
  const status = document.getElementById("confirm-status");
  const error = document.getElementById("confirm-error");

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const byte of bytes) { text += String.fromCharCode(byte); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0)).buffer;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      allowCredentials: (json.allowCredentials || []).map(
        (item) => Object.assign({}, item, { id: fromBase64url(item.id) })),
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try { return credential.toJSON(); } catch (failure) { /* fall through */ }
    }
    const response = credential.response;
    const json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
      },
    };
    if (response.userHandle) { json.response.userHandle = toBase64url(response.userHandle); }
    return json;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
    });
    let json = {};
    try { json = await response.json(); } catch (failure) { /* empty body */ }
    return { ok: response.ok, body: json };
  }

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
