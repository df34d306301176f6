/* actions: the execution page's buttons (terminate, relaunch, recover, approve, reject,
   signal) post JSON to /console/actions/..., then go to the page the server names; node links
   open the node's panel in place (the plain link still works without this script). */
"use strict";
(function () {
  const POSTED = ["terminate", "relaunch", "recover", "approve", "reject", "signal"];

  function status(message, isError) {
    const el = document.getElementById("action-status");
    if (!el) {
      if (isError) window.alert(message);
      return;
    }
    el.textContent = message;
    el.classList.toggle("error", !!isError);
    el.setAttribute("role", isError ? "alert" : "status");
  }

  function target(el) {
    return { project: el.dataset.project, domain: el.dataset.domain, name: el.dataset.name };
  }

  async function post(action, body) {
    const response = await fetch("/console/actions/" + action, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (e) {
      /* An empty or non-JSON answer: reported by the status below. */
    }
    if (!response.ok) throw new Error(answer.message || response.status + " " + response.statusText);
    return answer;
  }

  async function run(action, body, button) {
    if (button) button.disabled = true;
    status(action.charAt(0).toUpperCase() + action.slice(1) + "…", false);
    try {
      const answer = await post(action, body);
      status("Done.", false);
      if (answer.url && answer.url !== location.pathname + location.search) {
        location.assign(answer.url);
      } else {
        location.reload();
      }
    } catch (e) {
      status(e.message, true);
      if (button) button.disabled = false;
    }
  }

  /* A signal's input as JSON, read the way its data-kind says. */
  function signalValue(input) {
    const raw = input.value;
    switch (input.dataset.kind) {
      case "boolean":
        return raw === "true";
      case "integer":
      case "float":
        if (raw.trim() === "" || isNaN(Number(raw))) throw new Error("Enter a number.");
        return Number(raw);
      case "string":
        return raw;
      default:
        try {
          return JSON.parse(raw);
        } catch (e) {
          throw new Error("Enter a JSON value: " + e.message);
        }
    }
  }

  function openTerminate(button) {
    const dialog = document.getElementById("terminate-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      const cause = window.prompt("Cause of the termination:");
      if (cause !== null) run("terminate", Object.assign(target(button), { cause: cause }), button);
      return;
    }
    dialog.showModal();
    const cause = dialog.querySelector("textarea");
    if (cause) cause.focus();
  }

  /* Node panels: load `.../nodes/{id}` into the slot and keep the URL in step. */
  function panelUrl(slot, node, attempt) {
    let url = slot.dataset.fragmentBase + encodeURIComponent(node);
    if (attempt !== null && attempt !== undefined && attempt !== "") url += "?attempt=" + encodeURIComponent(attempt);
    return url;
  }

  async function showPanel(node, attempt, pageUrl, push) {
    const slot = document.getElementById("node-detail-slot");
    if (!slot) return false;
    try {
      const response = await fetch(panelUrl(slot, node, attempt), { headers: { Accept: "text/html" } });
      if (!response.ok) return false;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const panel = doc.getElementById("node-detail");
      if (!panel) return false;
      slot.replaceChildren(document.adoptNode(panel));
      if (push) history.pushState({ node: node, attempt: attempt }, "", pageUrl);
      markSelected(node);
      if (window.alulaLive) window.alulaLive.localizeTimes(panel);
      document.dispatchEvent(new CustomEvent("alula:refreshed", { detail: panel }));
      panel.focus();
      return true;
    } catch (e) {
      return false;
    }
  }

  function closePanel(push) {
    const slot = document.getElementById("node-detail-slot");
    if (!slot) return false;
    slot.replaceChildren();
    if (push) history.pushState({ node: null }, "", slot.dataset.executionUrl);
    markSelected(null);
    return true;
  }

  /* The table's selected row and the live parts' URLs follow the open panel. */
  function markSelected(node) {
    for (const row of document.querySelectorAll("#node-table tr[data-node-id]")) {
      const on = row.dataset.nodeId === node;
      row.classList.toggle("selected", on);
      const link = row.querySelector("a.node-link");
      if (link) {
        if (on) link.setAttribute("aria-current", "true");
        else link.removeAttribute("aria-current");
      }
    }
    for (const g of document.querySelectorAll("#graph g.node[data-node-id]")) {
      const on = g.getAttribute("data-node-id") === node;
      g.classList.toggle("selected", on);
      if (on) g.setAttribute("aria-current", "true");
      else g.removeAttribute("aria-current");
    }
    const slot = document.getElementById("node-detail-slot");
    if (!slot) return;
    for (const el of document.querySelectorAll("[data-live]")) {
      if (el.closest("#node-detail")) continue;
      const part = new URL(el.getAttribute("data-live"), location.href).searchParams.get("live");
      const url = new URL(location.href);
      url.searchParams.delete("attempt");
      if (part) url.searchParams.set("live", part);
      el.setAttribute("data-live", url.pathname + url.search);
    }
  }

  /* A link to `?node=` of this page, as (node, attempt), or null. */
  function nodeLink(anchor) {
    const href = anchor.getAttribute("href") || anchor.getAttribute("xlink:href");
    if (!href) return null;
    const url = new URL(href, location.href);
    if (url.origin !== location.origin || url.pathname !== location.pathname) return null;
    const node = url.searchParams.get("node");
    if (!node) return null;
    return { node: node, attempt: url.searchParams.get("attempt"), url: url.pathname + url.search };
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const button = event.target.closest("button[data-action]");
    if (button) {
      const action = button.dataset.action;
      if (action === "terminate") {
        event.preventDefault();
        openTerminate(button);
      } else if (action === "relaunch" || action === "recover") {
        event.preventDefault();
        run(action, target(button), button);
      } else if (action === "approve" || action === "reject") {
        event.preventDefault();
        run(action, Object.assign(target(button), { signal_id: button.dataset.signalId, node: button.dataset.node }), button);
      }
      /* signal: the form's submit handler; launch: the launch form's script. */
      return;
    }
    if (event.target.closest("[data-dismiss=dialog]")) {
      const dialog = event.target.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    const close = event.target.closest("a[data-close-panel]");
    if (close && closePanel(true)) {
      event.preventDefault();
      return;
    }
    const anchor = event.target.closest("a");
    if (!anchor) return;
    const link = nodeLink(anchor);
    if (!link) return;
    event.preventDefault();
    showPanel(link.node, link.attempt, link.url, true).then(function (shown) {
      if (!shown) location.assign(link.url);
    });
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.id === "terminate-form") {
      event.preventDefault();
      const cause = form.querySelector("textarea[name=cause]").value;
      const dialog = form.closest("dialog");
      if (dialog) dialog.close();
      run("terminate", Object.assign(target(form), { cause: cause }), form.querySelector("button[type=submit]"));
    } else if (form.hasAttribute("data-signal-form")) {
      event.preventDefault();
      let value;
      try {
        value = signalValue(form.querySelector("[name=value]"));
      } catch (e) {
        status(e.message, true);
        return;
      }
      const body = Object.assign(target(form), { signal_id: form.dataset.signalId, node: form.dataset.node, value: value });
      run("signal", body, form.querySelector("button[type=submit]"));
    }
  });

  window.addEventListener("popstate", function () {
    if (!document.getElementById("node-detail-slot")) return;
    const params = new URLSearchParams(location.search);
    const node = params.get("node");
    if (node) showPanel(node, params.get("attempt"), null, false);
    else closePanel(false);
  });

  window.alulaActions = { post: post, known: POSTED };
})();
