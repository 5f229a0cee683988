// Keys: a tenant's keys (or the admin and viewer keys), with expiry, last use and state; create one
// (its secret shown once, with a copy button), rotate, revoke.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, when } from "../api.js";
import { Done, Loading, Problem, can, useAction, useLoad } from "../ui.js";

function state(key) {
  const now = Date.now() / 1000;
  if (key.revoked_at) return "revoked";
  if (key.expires_at && key.expires_at <= now) return "expired";
  if (key.replaced_by) return "rotated (in grace)";
  return "active";
}

/** The one time a key's secret is visible: after create or rotate. */
function Secret({ made, onClose }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(made.key);
    setCopied(true);
  };
  return html`<div class="secret" role="alert" aria-labelledby="secret-title">
    <h2 id="secret-title">New key ${made.prefix}: copy it now</h2>
    <p>This is the only time the broker shows it; it keeps only a hash.</p>
    <div class="inline"><code data-testid="new-key">${made.key}</code>
      <button onClick=${copy}>${copied ? "Copied" : "Copy"}</button>
      <button class="secondary" onClick=${onClose}>Done</button></div>
  </div>`;
}

function NewKey({ tenant, caller, onMade }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState(tenant ? "" : "viewer");
  const [days, setDays] = useState("");
  const [models, setModels] = useState("");
  const action = useAction();
  const submit = async (event) => {
    event.preventDefault();
    const body = {
      name,
      roles: role ? [role] : [],
      models: models.split(",").map((m) => m.trim()).filter(Boolean),
      ...(tenant ? { tenant } : {}),
      ...(days ? { expires_at: Date.now() / 1000 + Number(days) * 86400 } : {}),
    };
    const made = await action.run(() => admin("/keys", { method: "POST", body }));
    if (made) {
      setName("");
      onMade(made);
    }
  };
  const roles = tenant ? [["", "API only"], ["tenant_admin", "Tenant admin"]] : [["viewer", "Viewer"], ["admin", "Admin"]];
  return html`<form class="grid" onSubmit=${submit} aria-labelledby="newkey-title">
    <h2 id="newkey-title">New key ${tenant ? `for ${tenant}` : "(admin API, every tenant)"}</h2>
    <label for="key-name">Name</label>
    <input id="key-name" value=${name} onInput=${(e) => setName(e.target.value)} placeholder="what it is for" />
    <label for="key-role">Role</label>
    <select id="key-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
      ${roles.filter(([r]) => caller.roles.includes("admin") || r !== "admin").map(([r, label]) => html`<option value=${r}>${label}</option>`)}
    </select>
    <label for="key-days">Expires in (days; empty: never)</label>
    <input id="key-days" inputmode="numeric" value=${days} onInput=${(e) => setDays(e.target.value)} />
    ${tenant && html`<label for="key-models">Models (comma-separated; empty: the tenant's)</label>
      <input id="key-models" value=${models} onInput=${(e) => setModels(e.target.value)} />`}
    <div class="actions"><button type="submit" disabled=${action.busy}>Create key</button></div>
    <${Problem} error=${action.error} />
  </form>`;
}

function KeyRow({ k, writable, onChanged, onMade }) {
  const action = useAction();
  const revoke = () => {
    if (!confirm(`Revoke ${k.prefix}? It stops working at once.`)) return;
    action.run(() => admin(`/keys/${k.key_id}`, { method: "DELETE" }), () => "Revoked.").then(onChanged);
  };
  const rotate = async () => {
    const made = await action.run(() => admin(`/keys/${k.key_id}/rotate`, { method: "POST", body: {} }));
    if (made) onMade(made);
  };
  const live = !k.revoked_at;
  return html`<tr data-key=${k.prefix}>
    <td><code>${k.prefix}</code></td><td>${k.name || html`<span class="muted">—</span>`}</td>
    <td>${k.roles.length ? k.roles.join(", ") : "API"}</td>
    <td>${when(k.created_at)}</td><td>${when(k.expires_at)}</td>
    <td class="last-used">${k.last_used_at ? when(k.last_used_at) : html`<span class="muted">never</span>`}</td>
    <td class="state">${state(k)}</td>
    <td>${writable && live && html`<button class="secondary" disabled=${action.busy} onClick=${rotate}>Rotate</button>
      <button class="danger" disabled=${action.busy} onClick=${revoke}>Revoke</button>`}
      <${Problem} error=${action.error} /></td>
  </tr>`;
}

export function KeysPage({ caller, args: [asked] }) {
  const initial = asked || caller.tenant || "";
  const [tenant, setTenant] = useState(initial);
  const [typed, setTyped] = useState(initial);
  const [made, setMade] = useState(null);
  const query = tenant ? `?tenant=${encodeURIComponent(tenant)}` : "";
  const { data, error, loading, reload } = useLoad(() => admin(`/keys${query}`), [tenant]);
  const writable = can(caller, "keys:write");
  const onMade = (key) => {
    setMade(key);
    reload();
  };
  const choose = (event) => {
    event.preventDefault();
    setTenant(typed.trim());
  };
  return html`<section aria-labelledby="keys-title">
    <h1 id="keys-title">Keys</h1>
    <form class="inline" onSubmit=${choose} aria-label="Whose keys">
      <label for="keys-tenant">Tenant (empty: admin and viewer keys)</label>
      <input id="keys-tenant" value=${typed} onInput=${(e) => setTyped(e.target.value)} />
      <button type="submit">Show</button>
    </form>
    ${made && html`<${Secret} made=${made} onClose=${() => setMade(null)} />`}
    <${Problem} error=${error} /><${Loading} when=${loading && !data} />
    ${data && html`<table data-testid="keys">
      <thead><tr><th scope="col">Prefix</th><th scope="col">Name</th><th scope="col">Roles</th><th scope="col">Created</th>
        <th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${data.data.map((k) => html`<${KeyRow} key=${k.key_id} k=${k} writable=${writable} onChanged=${reload} onMade=${onMade} />`)}</tbody>
    </table>
    <p class="muted">Last use is written at most once a minute per key, so it may be a minute behind.</p>`}
    ${writable && html`<${NewKey} key=${tenant} tenant=${tenant} caller=${caller} onMade=${onMade} />`}
  </section>`;
}
