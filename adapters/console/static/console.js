// The console's one script: a form marked data-api is sent to that API route as JSON, signed by
// the session (its cookie, and the page's CSRF token in X-CSRF-Token). Field names with dots
// build nested objects ("destination.kind"); names starting with "_" only fill the route's
// {placeholders}; a field marked data-json is sent as the JSON value it holds; empty fields are
// left out. On success the page reloads (or goes to data-next, with {id} from the answer, or
// shows the answer in the element data-show names); a refusal shows the API's problem detail
// next to the button.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

  function body(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.name.startsWith("_") || el.disabled || el.closest("fieldset:disabled")) continue;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) continue;
      if (el.value === "") continue;
      const parts = el.name.split(".");
      let node = out;
      for (const part of parts.slice(0, -1)) node = node[part] ??= {};
      // A field marked data-json holds a JSON value (a whole document), sent as that value.
      node[parts[parts.length - 1]] = el.dataset.json !== undefined ? JSON.parse(el.value) : el.value;
    }
    return out;
  }

  function target(form) {
    const template = form.dataset.apiTemplate;
    if (!template) return form.dataset.api;
    return template.replace(/\{(\w+)\}/g, (_, name) =>
      encodeURIComponent(form.elements["_" + name]?.value ?? ""));
  }

  async function send(form) {
    const status = form.querySelector(".status");
    const button = form.querySelector("button[type=submit]");
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf };
    if (form.dataset.idempotencyKey) headers["Idempotency-Key"] = form.dataset.idempotencyKey;
    let sent;
    try {
      sent = JSON.stringify(body(form));
    } catch (e) {
      status.textContent = `Not sent: a JSON field does not parse (${e.message})`;
      status.className = "status error";
      return;
    }
    button.disabled = true;
    status.textContent = "Sending…";
    status.className = "status";
    try {
      const r = await fetch(target(form), {
        method: form.dataset.method || "POST",
        headers,
        body: sent,
        credentials: "same-origin",
      });
      const text = await r.text();
      const answer = text ? JSON.parse(text) : {};
      if (!r.ok) {
        const detail = answer.detail && answer.detail !== answer.title ? ` — ${answer.detail}` : "";
        status.textContent = `Refused: ${answer.title ?? r.status}${detail} (${answer.code ?? r.status})`;
        status.className = "status error";
        button.disabled = false;
        return;
      }
      status.textContent = "Done.";
      if (form.dataset.show) {
        document.getElementById(form.dataset.show).textContent = JSON.stringify(answer, null, 2);
        button.disabled = false;
      } else if (form.dataset.next) {
        location.assign(form.dataset.next.replace("{id}", encodeURIComponent(answer.id ?? "")));
      } else {
        location.reload();
      }
    } catch (e) {
      status.textContent = `Not sent: ${e}`;
      status.className = "status error";
      button.disabled = false;
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("form.api")) return;
    event.preventDefault();
    send(form);
  });

  // A select with data-toggles enables the fieldset of its class whose data-when is its value.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!select.dataset?.toggles) return;
    for (const set of document.querySelectorAll(`fieldset.${select.dataset.toggles}`)) {
      set.disabled = set.dataset.when !== select.value;
    }
  });
})();
