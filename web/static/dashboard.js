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
  const cell = (row, text, className) => {
    const td = row.insertCell();
    if (className) td.className = className;
    if (text !== null) td.textContent = text;
    return td;
  };
  // The alive workers' table, rebuilt from live.json (text and links only).
  const workerRows = (body, workers) => {
    const base = (body.closest("table").dataset.submissionUrl || "").replace(/0$/, "");
    body.replaceChildren();
    if (!workers.length) {
      cell(body.insertRow(), "No worker has reported in the last minute.", "muted").colSpan = 4;
      return;
    }
    workers.forEach((w) => {
      const row = body.insertRow();
      cell(row, w.worker).title = w.sandbox + (w.gpus ? " · GPUs " + w.gpus : "");
      cell(row, w.queues);
      const grading = cell(row, null);
      if (w.health) {
        const sick = document.createElement("span");
        sick.className = "alert";
        sick.textContent = "unhealthy: " + w.health;
        grading.appendChild(sick);
      } else if (w.submission_id) {
        const link = document.createElement("a");
        link.href = base + w.submission_id;
        link.textContent = "#" + w.submission_id;
        grading.appendChild(link);
      } else {
        const idle = document.createElement("span");
        idle.className = "muted";
        idle.textContent = "idle";
        grading.appendChild(idle);
      }
      cell(row, w.last_seen_s + " s ago", "num");
    });
  };
  let delay = 5000;
  const poll = async () => {
    if (!document.hidden) {
      try {
        const response = await fetch(panel.dataset.url, {headers: {Accept: "application/json"}});
        if (!response.ok) throw new Error(String(response.status));
        const state = await response.json();
        fields.forEach((el) => {
          const value = lookup(state, el.dataset.live);
          if (el.dataset.format === "alert") {
            el.textContent = value || "";
            el.hidden = !value;
          } else {
            el.textContent = format(value, el.dataset.format);
          }
        });
        panel.querySelectorAll("[data-live-rows]").forEach((body) => workerRows(body, lookup(state, body.dataset.liveRows) || []));
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
