// Follows grading on the results page: polls status.json, shows the queue position or
// which test is running (and its epoch, with the partial training curve as an image the
// server draws), and reloads once the result is in (the server renders the table).
// Text and attributes only, never HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  if (!status) return;
  const text = document.getElementById("status-text");
  const badge = status.querySelector(".badge");
  const live = document.getElementById("live-text");
  const bar = document.getElementById("live-bar");
  const figure = document.getElementById("live-curve-figure");
  const image = document.getElementById("live-curve");
  let delay = 1500;
  const showProgress = (p) => {
    if (!live || !p) return;
    let line = "Test " + p.test + " of " + p.tests + ": " + p.name;
    if (p.epoch) line += ", epoch " + p.epoch + " of " + p.epochs;
    if (live.textContent !== line) live.textContent = line;
    if (bar) { bar.max = p.tests; bar.value = Math.max(0, p.test - 1); }
    if (figure && image && p.curve_url) {
      const wanted = new URL(p.curve_url, window.location.href).href;
      if (image.src !== wanted) image.src = wanted;
      figure.hidden = false;
    } else if (figure) {
      figure.hidden = true;
    }
  };
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
        showProgress(state.progress);
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
