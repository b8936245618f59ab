// Follows grading on the results page: polls status.json, shows the queue position,
// and reloads once the result is in (the server renders the table, escaped).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  if (!status) return;
  const text = document.getElementById("status-text");
  const badge = status.querySelector(".badge");
  let delay = 1500;
  const poll = async () => {
    try {
      const response = await fetch(status.dataset.url, {headers: {Accept: "application/json"}});
      if (response.ok) {
        const state = await response.json();
        if (state.status === "done" || state.status === "error") {
          window.location.reload();
          return;
        }
        text.textContent = state.message;
        badge.textContent = state.status;
        badge.className = "badge " + state.status;
        delay = 1500;
      } else {
        delay = Math.min(delay * 2, 15000);
      }
    } catch (error) {
      delay = Math.min(delay * 2, 15000);
    }
    window.setTimeout(poll, delay);
  };
  window.setTimeout(poll, delay);
});
