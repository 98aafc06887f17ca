// Times in the reader's own time zone. The server renders every time as
// <time datetime="...Z">medium date and time UTC</time> (the no-script fallback);
// this rewrites each one in the browser's time zone and language, and says recent ones
// relatively ("5 minutes ago", "5 分前"), keeping the full date in the title.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) { return; }
  const language = document.documentElement.lang || undefined;
  const absolute = new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" });
  const relative = Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(language, { numeric: "auto" })
    : null;
  const STEPS = [
    ["second", 60], ["minute", 60], ["hour", 24], ["day", 7],
  ];

  function recent(date, now) {
    let amount = (date.getTime() - now) / 1000;
    if (!relative || Math.abs(amount) >= 7 * 24 * 3600) { return null; }
    for (const [unit, size] of STEPS) {
      if (Math.abs(amount) < size) {
        return relative.format(Math.round(amount), unit);
      }
      amount /= size;
    }
    return null;
  }

  const now = Date.now();
  for (const element of document.querySelectorAll("time[datetime]")) {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) { continue; }
    const full = absolute.format(date);
    const near = element.hasAttribute("data-relative") ? recent(date, now) : null;
    element.textContent = near || full;
    element.title = full;
  }
})();
