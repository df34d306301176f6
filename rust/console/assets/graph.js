/* graph: zoom buttons for the execution graph, and nested graphs (subworkflows, branches,
   dynamic nodes) fetched under the main graph when their expand control is followed. Without
   JavaScript the same controls are plain links to pages that show the same thing. */
"use strict";
(function () {
  const STEPS = [0.25, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2];
  let zoom = 1;
  // Paths of the nested graphs the reader opened, kept across live refreshes.
  const opened = [];

  function mainGraph() {
    return document.getElementById("graph");
  }

  function applyZoom() {
    const svg = mainGraph();
    if (!svg) return;
    const w = parseFloat(svg.getAttribute("data-width"));
    const h = parseFloat(svg.getAttribute("data-height"));
    if (!w || !h) return;
    // Resizing keeps the scroll box's scrollbars true to the drawing (a transform would not).
    svg.setAttribute("width", String(Math.round(w * zoom)));
    svg.setAttribute("height", String(Math.round(h * zoom)));
  }

  function setZoom(how) {
    const svg = mainGraph();
    if (!svg) return;
    if (how === "reset") zoom = 1;
    else if (how === "fit") {
      const box = svg.parentElement;
      const w = parseFloat(svg.getAttribute("data-width"));
      zoom = Math.min(2, Math.max(0.1, (box.clientWidth - 4) / w));
    } else {
      const i = STEPS.findIndex(function (s) { return s >= zoom - 1e-6; });
      const at = i < 0 ? STEPS.length - 1 : i;
      if (how === "in") zoom = STEPS[Math.min(STEPS.length - 1, STEPS[at] > zoom + 1e-6 ? at : at + 1)];
      if (how === "out") zoom = STEPS[Math.max(0, at - 1)];
    }
    applyZoom();
  }

  async function openNested(url, path, focus) {
    const box = document.getElementById("graph-expanded");
    if (!box) {
      window.location.href = url;
      return;
    }
    const existing = box.querySelector('[data-path="' + CSS.escape(path) + '"]');
    if (existing) {
      existing.scrollIntoView({ block: "nearest" });
      return;
    }
    try {
      const response = await fetch(url + "&fragment=1", { headers: { Accept: "text/html" } });
      if (!response.ok) {
        window.location.href = url;
        return;
      }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const section = doc.querySelector("section.graph-nested");
      if (!section) return;
      box.appendChild(section);
      if (opened.indexOf(url) < 0) opened.push(url);
      if (window.alulaLive) window.alulaLive.localizeTimes(section);
      const heading = section.querySelector("h3");
      // Only a reader's click moves focus; reopening after a live refresh must not.
      if (heading && focus) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    } catch (e) {
      window.location.href = url;
    }
  }

  document.addEventListener("click", function (event) {
    const zoomButton = event.target.closest("button[data-zoom]");
    if (zoomButton) {
      setZoom(zoomButton.getAttribute("data-zoom"));
      return;
    }
    const close = event.target.closest("button[data-close-nested]");
    if (close) {
      const section = close.closest("section.graph-nested");
      if (!section) return;
      const path = section.getAttribute("data-path");
      for (let i = opened.length - 1; i >= 0; i--) {
        if (opened[i].indexOf("path=" + encodeURIComponent(path)) >= 0) opened.splice(i, 1);
      }
      section.remove();
      return;
    }
    const expand = event.target.closest("a[data-expand]");
    if (expand && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      const url = expand.getAttribute("data-expand");
      const path = decodeURIComponent(url.split("path=")[1] || "");
      openNested(url, path, true);
    }
  });

  // A live refresh replaces the graph section (or the execution page's live part around it):
  // keep the zoom and reopen the nested graphs.
  document.addEventListener("alula:refreshed", function (event) {
    const fresh = event.detail;
    if (!fresh || (fresh.id !== "graph-section" && !fresh.querySelector("#graph-section"))) return;
    applyZoom();
    const urls = opened.slice();
    opened.length = 0;
    for (const url of urls) {
      openNested(url, decodeURIComponent(url.split("path=")[1] || ""), false);
    }
  });
})();
