// The OpenAI-compatible routes (a request's status, batches, files) answer a tenant's key
// only: an admin signed in with a key of no tenant pastes one of the tenant's keys here.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { keys } from "../api.js";

export function needsTenantKey(caller) {
  return !caller.tenant && !keys.tenant();
}

export function TenantKey({ caller, onSet }) {
  const [key, setKey] = useState("");
  if (caller.tenant) return null;
  const submit = (event) => {
    event.preventDefault();
    keys.setTenant(key.trim());
    setKey("");
    onSet();
  };
  return html`<form class="inline" onSubmit=${submit} aria-label="Tenant key">
    <label for="tenant-key">${keys.tenant() ? "Another tenant's key" : "A tenant's API key (these routes are the tenant's own)"}</label>
    <input id="tenant-key" type="password" autocomplete="off" required value=${key}
      onInput=${(e) => setKey(e.target.value)} placeholder="aib_…" />
    <button type="submit">Use</button>
  </form>`;
}
