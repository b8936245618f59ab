// Keeps the "Queue now" panel of the staff dashboard live: polls live.json and writes
// each figure into the element naming it (data-live="assignment.queued"). Text only,
// never HTML. Backs off while the server does not answer; stops when the tab is hidden.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("live");
  if (!panel) return;
  const fields = panel.querySelectorAll("[data-live]");
  const lookup = (state, path) => path.split(".").reduce((v, key) => (v == null ? v : v[key]), state);
  const format = (value, kind) => {
    if (value === null || value === undefined) return "—";
    if (kind === "duration") {
      if (value < 60) return value + " s";
      if (value < 3600) return Math.round(value / 60) + " min";
      return (value / 3600).toFixed(1) + " h";
    }
    if (kind === "time") return new Date(value).toLocaleTimeString();
    return String(value);
  };
  let delay = 5000;
  const poll = async () => {
    if (!document.hidden) {
      try {
        const response = await fetch(panel.dataset.url, {headers: {Accept: "application/json"}});
        if (!response.ok) throw new Error(String(response.status));
        const state = await response.json();
        fields.forEach((el) => { el.textContent = format(lookup(state, el.dataset.live), el.dataset.format); });
        panel.classList.remove("stale");
        delay = 5000;
      } catch (error) {
        panel.classList.add("stale");
        delay = Math.min(delay * 2, 60000);
      }
    }
    window.setTimeout(poll, delay);
  };
  window.setTimeout(poll, 1000);
});
