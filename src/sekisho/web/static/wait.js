// Waits for approval from another device (number matching), then completes the
// sign-in in this browser by submitting the CSRF-protected completion form.
(function () {
  "use strict";
  const status = document.getElementById("flow-status");
  if (!status) { return; }
  const flow = status.dataset.flow;
  const finished = {
    completed: status.dataset.completed,
    expired: status.dataset.expired,
    superseded: status.dataset.superseded,
  };

  async function poll() {
    try {
      const response = await fetch("/api/v1/signin/email/flows/" + encodeURIComponent(flow), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" },
      });
      if (response.ok) {
        const body = await response.json();
        if (body.state === "approved") {
          document.getElementById("complete-form").submit();
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
