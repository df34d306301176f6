/* launch: the launch form. Reads each field by its data-kind into JSON text (integers and JSON
   fields are sent as typed, so large integers keep every digit), uploads files through the data
   proxy, posts to /console/actions/launch and goes to the new execution, or shows the server's
   errors beside the fields they name. */
(function () {
  "use strict";

  var form = document.getElementById("launch-form");
  if (!form) {
    return;
  }
  var pendingUploads = 0;

  function fieldError(name, message) {
    var slot = document.getElementById("error-" + name);
    var field = form.querySelector('.field[data-input="' + CSS.escape(name) + '"]');
    if (slot) {
      slot.textContent = message || "";
    }
    if (field) {
      var control = document.getElementById("input-" + name);
      if (control) {
        if (message) {
          control.setAttribute("aria-invalid", "true");
        } else {
          control.removeAttribute("aria-invalid");
        }
      }
    }
  }

  function showError(message) {
    var box = document.getElementById("launch-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function setStatus(text) {
    var status = document.getElementById("launch-status");
    if (status) {
      status.textContent = text;
    }
  }

  /* One field as {json: text} to send, {omit: true} to leave to the launch plan's default,
     or {error: message}. */
  function readField(field) {
    var name = field.dataset.input;
    var kind = field.dataset.kind;
    var optional = field.hasAttribute("data-optional");
    var required = field.hasAttribute("data-required");
    var control = document.getElementById("input-" + name);
    if (kind === "none") {
      return { json: "null" };
    }
    if (kind === "boolean") {
      return { json: control.checked ? "true" : "false" };
    }
    var raw = control.value;
    var text = kind === "string" ? raw : raw.trim();
    if (text === "" && kind !== "string") {
      if (optional) {
        return { json: "null" };
      }
      if (required) {
        return { error: "required: enter a value" };
      }
      return { omit: true };
    }
    if (kind === "string" && text === "" && optional) {
      return { json: "null" };
    }
    switch (kind) {
      case "integer":
        if (!/^[-+]?\d+$/.test(text)) {
          return { error: "expected a whole number" };
        }
        return { json: text.replace(/^\+/, "").replace(/^(-?)0+(?=\d)/, "$1") };
      case "float": {
        var number = Number(text);
        if (!isFinite(number)) {
          return { error: "expected a number" };
        }
        return { json: JSON.stringify(number) };
      }
      case "datetime":
        /* datetime-local gives a time without a zone; the form's times are UTC. */
        return { json: JSON.stringify(text + "Z") };
      case "duration":
        if (control.validity.patternMismatch) {
          return { error: "expected a duration like 1h30m, 90s or 250ms" };
        }
        return { json: JSON.stringify(text) };
      case "json":
        try {
          JSON.parse(text);
        } catch (e) {
          return { error: "not valid JSON: " + e.message };
        }
        return { json: text };
      default:
        /* string, enum, file, dataset */
        return { json: JSON.stringify(text) };
    }
  }

  /* key=value lines as a JSON object text, or {error}. */
  function readPairs(id) {
    var control = document.getElementById(id);
    var slot = document.getElementById(id + "-error");
    var pairs = {};
    var lines = control.value.split("\n");
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i].trim();
      if (line === "") {
        continue;
      }
      var at = line.indexOf("=");
      if (at <= 0) {
        var message = "line " + (i + 1) + ": expected key=value";
        slot.textContent = message;
        control.setAttribute("aria-invalid", "true");
        return { error: message };
      }
      pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    slot.textContent = "";
    control.removeAttribute("aria-invalid");
    return { value: pairs };
  }

  function validateJsonField(event) {
    var field = event.target.closest(".field[data-kind='json']");
    if (!field) {
      return;
    }
    var read = readField(field);
    fieldError(field.dataset.input, read.error || "");
  }

  function randomRoot() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "console-" + Array.prototype.map.call(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  /* Asks the data proxy where to put one file, then PUTs it there; resolves to its URI. */
  async function uploadOne(file, root) {
    var answer = await fetch("/api/v1/dataproxy/artifact_urn", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        project: form.dataset.project,
        domain: form.dataset.domain,
        filename: file.name,
        filename_root: root,
      }),
    });
    var location = await answer.json().catch(function () { return {}; });
    if (!answer.ok) {
      throw new Error(location.message || "the upload location was refused (" + answer.status + ")");
    }
    var signed = location.signedUrl || location.signed_url;
    var native = location.nativeUrl || location.native_url;
    var put = await fetch(signed, { method: "PUT", headers: location.headers || {}, body: file });
    if (!put.ok) {
      throw new Error("uploading " + file.name + " failed (" + put.status + ")");
    }
    return native;
  }

  async function upload(event) {
    var picker = event.target;
    var target = document.getElementById(picker.dataset.uploadFor);
    var name = target.name;
    var files = Array.prototype.slice.call(picker.files || []);
    if (files.length === 0) {
      return;
    }
    var folder = picker.hasAttribute("data-folder");
    var root = randomRoot();
    pendingUploads++;
    fieldError(name, "");
    setStatus("Uploading " + files.map(function (f) { return f.name; }).join(", ") + "…");
    try {
      var uris = [];
      for (var i = 0; i < files.length; i++) {
        uris.push(await uploadOne(files[i], root));
      }
      /* A folder is the common prefix of its files' URIs. */
      target.value = folder ? uris[0].slice(0, uris[0].length - files[0].name.length - 1) : uris[0];
      setStatus("Uploaded.");
    } catch (e) {
      fieldError(name, e.message);
      setStatus("");
    } finally {
      pendingUploads--;
    }
  }

  async function submit(event) {
    event.preventDefault();
    showError("");
    if (pendingUploads > 0) {
      showError("Wait for the uploads to finish.");
      return;
    }
    var entries = [];
    var firstBad = null;
    form.querySelectorAll(".field[data-input]").forEach(function (field) {
      var name = field.dataset.input;
      var read = readField(field);
      fieldError(name, read.error || "");
      if (read.error) {
        firstBad = firstBad || document.getElementById("input-" + name);
      } else if (!read.omit) {
        entries.push(JSON.stringify(name) + ":" + read.json);
      }
    });
    var labels = readPairs("launch-labels");
    var annotations = readPairs("launch-annotations");
    var nameControl = document.getElementById("launch-exec-name");
    if (nameControl.validity.patternMismatch) {
      firstBad = firstBad || nameControl;
    }
    if (labels.error || annotations.error || firstBad) {
      showError("Some values need fixing; see the messages beside them.");
      (firstBad || document.getElementById(labels.error ? "launch-labels" : "launch-annotations")).focus();
      return;
    }
    var body =
      '{"launch_plan":' + JSON.stringify({
        project: form.dataset.project,
        domain: form.dataset.domain,
        name: form.dataset.name,
        version: form.dataset.version,
      }) +
      ',"inputs":{' + entries.join(",") + "}" +
      ',"name":' + JSON.stringify(nameControl.value.trim()) +
      ',"labels":' + JSON.stringify(labels.value) +
      ',"annotations":' + JSON.stringify(annotations.value) + "}";
    var button = form.querySelector('[data-action="launch"]');
    button.disabled = true;
    setStatus("Launching…");
    try {
      var answer = await fetch("/console/actions/launch", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: body,
      });
      var reply = await answer.json().catch(function () { return {}; });
      if (answer.ok && reply.url) {
        setStatus("Launched.");
        window.location.assign(reply.url);
        return;
      }
      (reply.errors || []).forEach(function (e) {
        fieldError(e.input, e.message);
      });
      showError(reply.message || "The launch failed (" + answer.status + ").");
      setStatus("");
      var first = reply.errors && reply.errors[0] && document.getElementById("input-" + reply.errors[0].input);
      (first || document.getElementById("launch-error")).focus();
    } catch (e) {
      showError("The server could not be reached: " + e.message);
      setStatus("");
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", submit);
  form.addEventListener("input", validateJsonField);
  form.querySelectorAll("input[type=file][data-upload-for]").forEach(function (picker) {
    picker.addEventListener("change", upload);
  });
})();
