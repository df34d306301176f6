/* live: keeps `data-live` elements fresh and shows times in the reader's zone.
   An element with data-live="URL" is replaced every few seconds by the element with the same
   id in URL's answer; the server leaves the attribute out once nothing will change. */
"use strict";
(function () {
  const PERIOD_MS = 2000;

  function relative(date) {
    const s = Math.round((Date.now() - date.getTime()) / 1000);
    if (s < 5) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function localizeTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) continue;
      el.title = d.toLocaleString();
      el.textContent = el.classList.contains("absolute") ? d.toLocaleString() : relative(d);
    }
  }

  async function refresh(el) {
    const url = el.getAttribute("data-live");
    if (!url || !el.id) return;
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById(el.id);
      if (!fresh) return;
      // Keep what the reader opened (details elements) open across refreshes.
      for (const open of el.querySelectorAll("details[open][id]")) {
        const same = fresh.querySelector("#" + CSS.escape(open.id));
        if (same) same.open = true;
      }
      el.replaceWith(fresh);
      localizeTimes(fresh);
      document.dispatchEvent(new CustomEvent("alula:refreshed", { detail: fresh }));
    } catch (e) {
      /* The next round tries again; a server restart is not an error for the reader. */
    }
  }

  function tick() {
    for (const el of document.querySelectorAll("[data-live]")) refresh(el);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    setInterval(tick, PERIOD_MS);
  });
  window.alulaLive = { refresh: refresh, localizeTimes: localizeTimes };
})();
