// Times are written by the server in the course's time zone, as <time datetime="ISO">.
// When the user chose "my browser's time zone" on the settings page (kept in this
// browser's localStorage), they are rewritten in the browser's own zone. Text only.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const KEY = "dlgrade.timezone";
  const choice = document.getElementById("timezone-choice");
  if (choice) {
    choice.value = window.localStorage.getItem(KEY) || "course";
    choice.addEventListener("change", () => {
      window.localStorage.setItem(KEY, choice.value);
      window.location.reload();
    });
  }
  if (window.localStorage.getItem(KEY) !== "browser") return;
  const format = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "2-digit", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  document.querySelectorAll("time[datetime]").forEach((el) => {
    const moment = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    el.title = el.textContent;
    el.textContent = format.format(moment);
    el.classList.add("local");
  });
});
