// The wait page: submits the code once six digits are in, counts down the resend
// cooldown, and waits for the flow to finish elsewhere. Approved from another device
// (number matching): completes the sign-in here through the CSRF-protected form.
// Completed in another tab of this browser (so this browser is signed in): goes on
// to the account page, or back to the application this sign-in is for. Shows or
// hides the notice that sign-in email is delayed.
(function () {
  "use strict";

  const code = document.getElementById("code");
  const codeForm = document.getElementById("code-form");
  if (code && codeForm) {
    let sent = false;
    code.addEventListener("input", () => {
      const digits = code.value.replace(/\D/g, "");
      if (digits !== code.value) { code.value = digits; }
      if (!sent && /^\d{6}$/.test(digits)) {
        sent = true;
        codeForm.requestSubmit();
      }
    });
  }

  const wait = document.getElementById("resend-wait");
  const resend = document.getElementById("resend-button");
  if (wait && resend) {
    let seconds = parseInt(wait.dataset.seconds, 10) || 0;
    const tick = () => {
      seconds -= 1;
      if (seconds <= 0) {
        wait.hidden = true;
        resend.disabled = false;
        resend.removeAttribute("aria-describedby");
        return;
      }
      wait.textContent = wait.dataset.template.replace("{seconds}", String(seconds));
      window.setTimeout(tick, 1000);
    };
    window.setTimeout(tick, 1000);
  }

  const status = document.getElementById("flow-status");
  if (!status) { return; }
  const flow = status.dataset.flow;
  const delayed = document.getElementById("mail-delayed");
  const finished = {
    completed: status.dataset.completed,
    expired: status.dataset.expired,
    superseded: status.dataset.superseded,
    denied: status.dataset.denied,
  };

  async function signedInHere() {
    const response = await fetch("/api/v1/session", {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    });
    return response.ok;
  }

  async function poll() {
    try {
      const response = await fetch("/api/v1/signin/email/flows/" + encodeURIComponent(flow), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
      });
      if (response.ok) {
        const body = await response.json();
        if (delayed) { delayed.hidden = body.email_delivery !== "delayed"; }
        if (body.state === "approved") {
          document.getElementById("complete-form").submit();
          return;
        }
        if (body.state === "completed" && await signedInHere()) {
          window.location.assign(document.body.dataset.afterSignIn || "/account");
          return;
        }
        if (body.state in finished) {
          status.textContent = finished[body.state];
          return;
        }
      } else if (response.status === 400) {
        status.textContent = finished.expired;
        return;
      }
    } catch (error) {
      // The network blipped; try again on the next tick.
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1500);
})();
