// Waits for approval from another device (number matching), then completes the
// sign-in in this browser by submitting the CSRF-protected completion form.
(function () {
  "use strict";
  const status = document.getElementById("flow-status");
  if (!status) { return; }
  const flow = status.dataset.flow;
  let stopped = false;

  async function poll() {
    if (stopped) { return; }
    try {
      const response = await fetch("/api/v1/signin/email/flows/" + encodeURIComponent(flow), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
      });
      if (response.ok) {
        const body = await response.json();
        if (body.state === "approved") {
          stopped = true;
          document.getElementById("complete-form").submit();
          return;
        }
        if (body.state === "denied" || body.state === "expired" || body.state === "superseded") {
          stopped = true;
          status.textContent = body.state === "denied" ? status.dataset.denied : status.dataset.expired;
          return;
        }
      } else if (response.status === 400) {
        stopped = true;
        status.textContent = status.dataset.expired;
        return;
      }
    } catch (error) {
      // The network blipped; try again on the next tick.
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1500);
})();
