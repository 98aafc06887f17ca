// Passkeys in the browser: sign-in (autofill, button, the remembered address's passkey
// offered beside the email button) and adding one on
// the account page. The WebAuthn JSON conversions and the POST are webauthn.js's,
// loaded before this file. Keeps the browser's passkey list in step with the server
// through the WebAuthn Signal API.
(function () {
  "use strict";
  if (!window.PublicKeyCredential) { return; }
  const HINT = "sekisho.passkey-email";
  const { creationOptions, requestOptions, credentialJSON, post } = window.SekishoWebAuthn;

  function show(element, text) {
    if (!element) { return; }
    element.textContent = text;
    element.hidden = false;
  }

  // -- sign-in page ------------------------------------------------------------------

  async function signIn(options) {
    const start = await post("/api/v1/signin/passkey/options", options.email ? { email: options.email } : {});
    if (!start.ok) { throw new Error(start.body.error || "options"); }
    if (options.onOptions) { options.onOptions(start.body.publicKey); }
    const request = { publicKey: requestOptions(start.body.publicKey) };
    if (options.mediation) { request.mediation = options.mediation; }
    if (options.signal) { request.signal = options.signal; }
    const credential = await navigator.credentials.get(request);
    const finish = await post("/api/v1/signin/passkey/verify", {
      flow_id: start.body.flow_id,
      credential: credentialJSON(credential),
    });
    if (finish.ok) {
      window.location.assign(document.body.dataset.afterSignIn || "/account");
      return;
    }
    if (finish.body.error === "passkey_unknown" && PublicKeyCredential.signalUnknownCredential) {
      PublicKeyCredential.signalUnknownCredential({
        rpId: start.body.publicKey.rpId,
        credentialId: finish.body.credential_id,
      }).catch(() => undefined);
    }
    const failure = new Error(finish.body.error || "verify");
    failure.code = finish.body.error;
    throw failure;
  }

  function setUpSignIn(section) {
    const error = document.getElementById("passkey-error");
    const button = document.getElementById("passkey-button");
    const forEmail = document.getElementById("passkey-for-email");
    const email = document.getElementById("email");
    let conditional = null;
    section.hidden = false;

    function report(failure) {
      if (failure && failure.name === "AbortError") { return; }
      if (failure && failure.name === "NotAllowedError") { return; }
      show(error, failure && failure.code === "passkey_unknown" ? error.dataset.unknown : error.dataset.failed);
    }

    function stopAutofill() {
      if (conditional) { conditional.abort(); conditional = null; }
    }

    // The autofill request's challenge lives only as long as its options' timeout;
    // renew it shortly before then, so a passkey picked later still works.
    async function startAutofill() {
      if (!PublicKeyCredential.isConditionalMediationAvailable) { return; }
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) { return; }
      const controller = new AbortController();
      conditional = controller;
      let renew = null;
      const onOptions = (publicKey) => {
        const lifetime = Math.max((publicKey.timeout || 60000) - 15000, 15000);
        renew = window.setTimeout(() => {
          if (conditional === controller) { controller.abort(); startAutofill().catch(() => undefined); }
        }, lifetime);
      };
      signIn({ mediation: "conditional", signal: controller.signal, onOptions })
        .catch(report)
        .finally(() => { if (renew !== null) { window.clearTimeout(renew); } });
    }

    button.addEventListener("click", () => {
      stopAutofill();
      signIn({}).catch(report);
    });

    // The email button always sends an email. When the typed address is the one this
    // browser last used a passkey for, the passkey is offered beside it, as a choice.
    function typed() { return (email.value || "").trim().toLowerCase(); }
    function offerPasskey() {
      const remembered = window.localStorage.getItem(HINT);
      forEmail.hidden = !(remembered && typed() === remembered);
    }
    email.addEventListener("input", offerPasskey);
    offerPasskey();
    forEmail.addEventListener("click", () => {
      stopAutofill();
      signIn({ email: typed() }).catch(report);
    });

    startAutofill().catch(() => undefined);
  }

  // -- account page ------------------------------------------------------------------

  async function addPasskey(error, thenSignIn) {
    const start = await post("/api/v1/passkeys/registration/options", {});
    if (!start.ok) {
      const failure = new Error(start.body.error || "options");
      failure.code = start.body.error;
      throw failure;
    }
    const credential = await navigator.credentials.create({ publicKey: creationOptions(start.body.publicKey) });
    const finish = await post("/api/v1/passkeys/registration/verify", {
      flow_id: start.body.flow_id,
      credential: credentialJSON(credential),
    });
    if (!finish.ok) {
      const failure = new Error(finish.body.error || "verify");
      failure.code = finish.body.error;
      throw failure;
    }
    // A restricted session signs in with the new passkey next (the caller does it).
    if (thenSignIn) { return; }
    // Back to the account page, which confirms the new passkey and asks for its name
    // (the server already named it after the authenticator's model).
    window.location.assign("/account?added=" + encodeURIComponent(finish.body.id) + "#passkey-added");
  }

  function setUpAccount(table) {
    const data = table.dataset;
    const ids = (data.credentialIds || "").split(" ").filter(Boolean);
    if (ids.length) {
      window.localStorage.setItem(HINT, data.email);
    } else {
      window.localStorage.removeItem(HINT);
    }
    if (data.userHandle && PublicKeyCredential.signalAllAcceptedCredentials) {
      PublicKeyCredential.signalAllAcceptedCredentials({
        rpId: data.rpId,
        userId: data.userHandle,
        allAcceptedCredentialIds: ids,
      }).catch(() => undefined);
    }
    const add = document.getElementById("add-passkey");
    const error = document.getElementById("add-passkey-error");
    if (!add) { return; }
    add.addEventListener("click", () => {
      error.hidden = true;
      addPasskey(error).catch((failure) => {
        if (failure && failure.name === "NotAllowedError") { return; }
        if (failure && failure.name === "InvalidStateError") { show(error, error.dataset.exists); return; }
        const messages = {
          reauthentication_required: error.dataset.reauth,
          passkey_already_registered: error.dataset.exists,
          passkey_not_allowed: error.dataset.notAllowed,
          passkey_limit_reached: error.dataset.limit,
        };
        show(error, messages[failure && failure.code] || error.dataset.failed);
      });
    });
  }

  // -- restricted session: enrol what the tier requires, then sign in with it ---------

  function setUpEnrolment(section) {
    const error = document.getElementById("add-passkey-error");
    const email = section.dataset.email;
    function failed(failure) {
      if (failure && failure.name === "NotAllowedError") { return; }
      if (failure && failure.name === "InvalidStateError") { show(error, error.dataset.exists); return; }
      const messages = {
        reauthentication_required: error.dataset.reauth,
        not_authenticated: error.dataset.reauth,
        passkey_already_registered: error.dataset.exists,
        passkey_not_allowed: error.dataset.notAllowed,
      };
      show(error, messages[failure && failure.code] || error.dataset.failed);
    }
    const add = document.getElementById("add-passkey");
    if (add) {
      add.addEventListener("click", () => {
        error.hidden = true;
        // Added: sign in with it at once; if that is cancelled, the page offers it again.
        addPasskey(error, true).then(
          () => signIn({ email: email }).catch(() => window.location.assign("/account")),
          failed,
        );
      });
    }
    const again = document.getElementById("enrol-signin");
    if (again) {
      again.addEventListener("click", () => {
        error.hidden = true;
        signIn({ email: email }).catch((failure) => {
          if (failure && failure.name === "NotAllowedError") { return; }
          show(error, error.dataset.signin);
        });
      });
    }
  }

  const signInSection = document.getElementById("passkey-signin");
  const enrolSection = document.getElementById("enrol");
  if (enrolSection) { setUpEnrolment(enrolSection); }
  if (signInSection) { setUpSignIn(signInSection); }
  const table = document.getElementById("passkeys");
  if (table) { setUpAccount(table); }
})();
