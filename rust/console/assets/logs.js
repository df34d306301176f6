/* logs: fills each <pre class="logs" data-src="..."> from admin's log route and, while the
   panel's attempt runs (data-running="true"), asks for the bytes after those it has
   (?offset=n) every few seconds. What was read is kept per URL, so a live refresh that replaces
   the panel continues where it was instead of starting over. */
"use strict";
(function () {
  const PERIOD_MS = 2000;
  /* A long log starts with its last part; the download link has the whole. */
  const FIRST_READ_BYTES = 1 << 20;
  const WRAP_KEY = "alula.logs.wrap";
  /* Per log URL: { text, offset, decoder, cut, missing }. */
  const seen = new Map();

  function withOffset(src, offset) {
    return src + (src.includes("?") ? "&" : "?") + "offset=" + offset;
  }

  function panelOf(pre) {
    return pre.closest(".logs-panel");
  }

  function panelRunning(panel) {
    return !!panel && panel.getAttribute("data-running") === "true";
  }

  function running(pre) {
    return panelRunning(panelOf(pre));
  }

  function setState(pre, text) {
    const figure = pre.closest("figure");
    const state = figure && figure.querySelector(".logs-state");
    if (state && state.textContent !== text) state.textContent = text;
  }

  function describe(pre, log) {
    if (log.missing) {
      setState(pre, running(pre) ? "No output yet." : "No logs were kept for this attempt.");
    } else if (log.offset === 0) {
      setState(pre, running(pre) ? "No output yet." : "Nothing was printed.");
    } else if (log.cut > 0) {
      setState(pre, "Showing the last part; the first " + log.cut + " bytes are in the download.");
    } else {
      setState(pre, "");
    }
  }

  function append(pre, text) {
    if (!text) return;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(text));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  /* Where to start reading a log not read before: its last FIRST_READ_BYTES. */
  async function startOffset(src) {
    const response = await fetch(withOffset(src, Number.MAX_SAFE_INTEGER));
    const length = Number(response.headers.get("x-log-length"));
    return response.ok && length > FIRST_READ_BYTES ? length - FIRST_READ_BYTES : 0;
  }

  async function read(pre) {
    const src = pre.getAttribute("data-src");
    let log = seen.get(src);
    if (!log) {
      log = { text: "", offset: 0, decoder: new TextDecoder(), cut: 0, missing: false };
      seen.set(src, log);
      try {
        log.cut = log.offset = await startOffset(src);
      } catch (e) {
        /* Read from the start. */
      }
    }
    let response;
    try {
      response = await fetch(withOffset(src, log.offset), { cache: "no-store" });
    } catch (e) {
      return; /* The server restarts; the next round tries again. */
    }
    if (response.status === 404) {
      log.missing = true;
      describe(pre, log);
      return;
    }
    if (!response.ok) {
      setState(pre, "Logs are unavailable: " + (await response.text()).slice(0, 300));
      return;
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    log.missing = false;
    log.offset += bytes.length;
    /* stream: a character split between two reads is completed by the next one. */
    const text = log.decoder.decode(bytes, { stream: true });
    log.text += text;
    append(pre, text);
    describe(pre, log);
  }

  /* Per combined-log URL: whether the attempt has one (a pod's), asked once per attempt. */
  const combinedLogs = new Map();

  /* A pod keeps one combined log: shown alone when there is one. The route answers `output`
     only from such a log, never from separate stdout and stderr. */
  async function chooseStreams(panel) {
    const output = panel.querySelector('pre.logs[data-stream="output"]');
    if (!output) return;
    const src = output.getAttribute("data-src");
    let combined = combinedLogs.get(src);
    if (combined === undefined) {
      try {
        combined = (await fetch(withOffset(src, Number.MAX_SAFE_INTEGER))).ok;
      } catch (e) {
        combined = false;
      }
      /* A running attempt may not have it yet: ask again next time. */
      if (combined || !panelRunning(panel)) combinedLogs.set(src, combined);
    }
    for (const figure of panel.querySelectorAll("figure.log")) {
      const stream = figure.getAttribute("data-stream");
      figure.hidden = combined ? stream !== "output" : stream === "output";
    }
    panel.setAttribute("data-streams", combined ? "output" : "separate");
  }

  function visiblePres(panel) {
    return Array.from(panel.querySelectorAll("pre.logs[data-src]")).filter(function (pre) {
      return !pre.closest("figure").hidden;
    });
  }

  async function start(panel) {
    if (panel.alulaLogs) return;
    panel.alulaLogs = true;
    const wrap = panel.querySelector("input.logs-wrap");
    if (wrap) {
      wrap.checked = localStorage.getItem(WRAP_KEY) === "1";
      panel.classList.toggle("wrap", wrap.checked);
      wrap.addEventListener("change", function () {
        localStorage.setItem(WRAP_KEY, wrap.checked ? "1" : "0");
        for (const p of document.querySelectorAll(".logs-panel")) {
          p.classList.toggle("wrap", wrap.checked);
          const box = p.querySelector("input.logs-wrap");
          if (box) box.checked = wrap.checked;
        }
      });
    }
    await chooseStreams(panel);
    for (const pre of visiblePres(panel)) {
      const log = seen.get(pre.getAttribute("data-src"));
      if (log && log.text) {
        append(pre, log.text);
        pre.scrollTop = pre.scrollHeight;
      }
      read(pre);
    }
    /* Followed until the panel is replaced (a refresh) or says the attempt ended. */
    const timer = setInterval(function () {
      if (!panel.isConnected || !panelRunning(panel)) {
        clearInterval(timer);
        return;
      }
      for (const pre of visiblePres(panel)) read(pre);
    }, PERIOD_MS);
  }

  function scan(root) {
    if (root.matches && root.matches(".logs-panel")) start(root);
    if (root.querySelectorAll) for (const panel of root.querySelectorAll(".logs-panel")) start(panel);
  }

  document.addEventListener("DOMContentLoaded", function () {
    scan(document);
    /* Panels arrive with live refreshes and node selections too. */
    new MutationObserver(function (records) {
      for (const record of records) for (const node of record.addedNodes) scan(node);
    }).observe(document.body, { childList: true, subtree: true });
  });
})();
