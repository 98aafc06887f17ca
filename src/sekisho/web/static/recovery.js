// The recovery codes page: "Copy the codes" puts them on the clipboard as plain text,
// one a line. Without script (or clipboard access) the codes stay selectable and the
// download form still works.
(function () {
  "use strict";
  const button = document.getElementById("copy-codes");
  const list = document.getElementById("recovery-codes");
  const status = document.getElementById("copy-status");
  if (!button || !list || !navigator.clipboard) { return; }
  button.hidden = false;
  button.addEventListener("click", () => {
    const codes = Array.from(list.querySelectorAll("code"), (item) => item.textContent.trim());
    navigator.clipboard.writeText(codes.join("\n") + "\n").then(
      () => { status.textContent = button.dataset.copied; },
      () => { status.textContent = button.dataset.failed; },
    );
  });
})();
