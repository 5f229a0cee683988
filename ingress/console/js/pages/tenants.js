// Tenants: the list with spend against budget and work in flight; one tenant's limits,
// models (editable), webhooks, and usage by model per day or hour.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, usd } from "../api.js";
import { UsageChart } from "../chart.js";
import { Done, Loading, Problem, can, useAction, useLoad } from "../ui.js";

async function tenantsWithUsage() {
  const listed = await admin("/tenants");
  return Promise.all(listed.data.map((t) => admin(`/tenants/${encodeURIComponent(t.name)}`)));
}

function Spend({ tenant }) {
  const spent = Number(tenant.usage?.spend_usd_month ?? 0);
  const budget = tenant.limits?.budget_usd_month;
  if (budget === undefined || budget === null) return html`${usd(spent)} <span class="muted">(no budget)</span>`;
  const share = Math.min(spent / Number(budget), 1);
  return html`<span>${usd(spent)} of ${usd(budget)}</span>
    <meter min="0" max="1" low="0.8" high="0.95" optimum="0" value=${share}
      aria-label=${`${Math.round(share * 100)} % of the monthly budget`}></meter>`;
}

function NewTenant({ onMade }) {
  const [name, setName] = useState("");
  const action = useAction();
  const submit = async (event) => {
    event.preventDefault();
    const made = await action.run(() => admin(`/tenants/${encodeURIComponent(name)}`, { method: "PUT", body: {} }),
      (t) => `Tenant ${t.name} created.`);
    if (made) {
      setName("");
      onMade();
    }
  };
  return html`<form class="inline" onSubmit=${submit} aria-label="New tenant">
    <label for="new-tenant">New tenant</label>
    <input id="new-tenant" required pattern="[A-Za-z0-9._\\-]+" value=${name}
      onInput=${(e) => setName(e.target.value)} placeholder="name" />
    <button type="submit" disabled=${action.busy}>Create</button>
    <${Problem} error=${action.error} /><${Done} text=${action.done} />
  </form>`;
}

export function TenantsPage({ caller }) {
  const { data, error, loading, reload } = useLoad(tenantsWithUsage);
  return html`<section aria-labelledby="tenants-title">
    <div class="title-row"><h1 id="tenants-title">Tenants</h1>
      <button class="secondary" onClick=${reload}>Refresh</button></div>
    ${can(caller, "tenants:write") && html`<${NewTenant} onMade=${reload} />`}
    <${Problem} error=${error} /><${Loading} when=${loading && !data} />
    ${data && html`<table data-testid="tenants">
      <thead><tr><th scope="col">Tenant</th><th scope="col">Active</th><th scope="col">Spend this month</th>
        <th scope="col">In flight</th><th scope="col">Requests/min limit</th><th scope="col">Models</th></tr></thead>
      <tbody>${data.map((t) => html`<tr data-tenant=${t.name}>
        <td><a href=${`#/tenants/${encodeURIComponent(t.name)}`}>${t.name}</a></td>
        <td>${t.active ? "yes" : "no"}</td>
        <td class="spend"><${Spend} tenant=${t} /></td>
        <td>${t.usage?.in_flight ?? "—"}</td>
        <td>${t.limits?.rpm ?? "—"}</td>
        <td>${t.models?.length ? t.models.join(", ") : html`<span class="muted">all</span>`}</td>
      </tr>`)}</tbody></table>`}
  </section>`;
}

const LIMITS = [
  ["rpm", "Requests per minute"],
  ["tpm", "Tokens per minute"],
  ["concurrency", "Concurrent requests"],
  ["budget_usd_month", "Monthly budget (USD)"],
];

function LimitsForm({ tenant, editable, onSaved }) {
  const [limits, setLimits] = useState(() => ({ ...tenant.limits }));
  const [models, setModels] = useState((tenant.models ?? []).join(", "));
  const [active, setActive] = useState(tenant.active);
  const action = useAction();
  const save = async (event) => {
    event.preventDefault();
    const cleaned = Object.fromEntries(
      Object.entries(limits).filter(([, v]) => v !== "" && v !== null && v !== undefined),
    );
    const body = {
      active,
      limits: cleaned,
      models: models.split(",").map((m) => m.trim()).filter(Boolean),
      webhooks: tenant.webhooks ?? [],
      webhook_secrets: tenant.webhook_secrets ?? [],
      ...(tenant.batch_service_tier ? { batch_service_tier: tenant.batch_service_tier } : {}),
    };
    if (await action.run(() => admin(`/tenants/${encodeURIComponent(tenant.name)}`, { method: "PUT", body }), () => "Saved.")) onSaved();
  };
  return html`<form class="grid" onSubmit=${save} aria-labelledby="limits-title">
    <h2 id="limits-title">Limits and models</h2>
    ${LIMITS.map(([field, label]) => html`<label for=${`limit-${field}`}>${label}</label>
      <input id=${`limit-${field}`} inputmode="decimal" disabled=${!editable}
        value=${limits[field] ?? ""} placeholder="no limit"
        onInput=${(e) => setLimits({ ...limits, [field]: e.target.value })} />`)}
    <label for="tenant-models">Models (comma-separated; empty: all)</label>
    <input id="tenant-models" disabled=${!editable} value=${models} onInput=${(e) => setModels(e.target.value)} />
    <label for="tenant-active">Active</label>
    <input id="tenant-active" type="checkbox" disabled=${!editable} checked=${active}
      onChange=${(e) => setActive(e.target.checked)} />
    ${editable ? html`<div class="actions"><button type="submit" disabled=${action.busy}>Save</button></div>`
      : html`<p class="muted">This key may not change tenants.</p>`}
    <${Problem} error=${action.error} /><${Done} text=${action.done} />
  </form>`;
}

function Webhooks({ tenant }) {
  const hooks = tenant.webhooks ?? [];
  return html`<section aria-labelledby="hooks-title"><h2 id="hooks-title">Webhooks</h2>
    ${hooks.length === 0 ? html`<p class="muted">No webhook endpoints.</p>` : html`<table>
      <thead><tr><th scope="col">URL</th><th scope="col">Format</th><th scope="col">Events</th><th scope="col">State</th></tr></thead>
      <tbody>${hooks.map((h) => html`<tr><td><code>${h.url}</code></td><td>${h.format}</td>
        <td>${h.events?.length ? h.events.join(", ") : "all"}</td>
        <td>${h.disabled_at ? "disabled (410)" : "active"}</td></tr>`)}</tbody></table>`}
    <p class="muted">Signing secrets: ${(tenant.webhook_secrets ?? []).length}</p>
  </section>`;
}

const WINDOWS = { day: 14 * 86400, hour: 48 * 3600 };

function Usage({ name }) {
  const [bucket, setBucket] = useState("day");
  const { data, error, loading, reload } = useLoad(() => {
    const to = Math.ceil(Date.now() / 1000);
    const query = new URLSearchParams({ tenant: name, from: to - WINDOWS[bucket], to, group_by: `${bucket},model` });
    return admin(`/usage?${query}`);
  }, [name, bucket]);
  const rows = data?.data ?? [];
  const span = data ? [data.from, data.to] : null;
  return html`<section aria-labelledby="usage-title">
    <div class="title-row"><h2 id="usage-title">Usage</h2>
      <label for="usage-bucket">Per</label>
      <select id="usage-bucket" value=${bucket} onChange=${(e) => setBucket(e.target.value)}>
        <option value="day">day (14 days)</option><option value="hour">hour (48 hours)</option></select>
      <button class="secondary" onClick=${reload}>Refresh</button></div>
    <${Problem} error=${error} /><${Loading} when=${loading && !data} />
    ${data && html`<div class="charts">
      <${UsageChart} title="Tokens by model" rows=${rows} bucket=${bucket} span=${span}
        measure=${(r) => r.prompt_tokens + r.completion_tokens} />
      <${UsageChart} title="Cost by model (USD)" rows=${rows} bucket=${bucket} span=${span}
        measure=${(r) => Number(r.cost_usd)} format=${usd} />
    </div>`}
  </section>`;
}

export function TenantPage({ caller, args: [name] }) {
  const { data, error, loading, reload } = useLoad(() => admin(`/tenants/${encodeURIComponent(name)}`), [name]);
  return html`<section aria-labelledby="tenant-title">
    <p><a href="#/tenants">← Tenants</a></p>
    <div class="title-row"><h1 id="tenant-title">Tenant ${name}</h1>
      <a class="button secondary" href=${`#/keys/${encodeURIComponent(name)}`}>Its keys</a></div>
    <${Problem} error=${error} /><${Loading} when=${loading && !data} />
    ${data && html`<dl class="facts">
        <dt>Spend this month</dt><dd data-testid="tenant-spend"><${Spend} tenant=${data} /></dd>
        <dt>In flight</dt><dd>${data.usage?.in_flight}</dd></dl>
      <div class="columns">
        <${LimitsForm} key=${JSON.stringify(data)} tenant=${data} editable=${can(caller, "tenants:write")} onSaved=${reload} />
        <${Webhooks} tenant=${data} />
      </div>
      <${Usage} name=${name} />`}
  </section>`;
}
