// Providers and pools, refreshed live: each target's circuit breaker and each pool's backlog
// (`GET /health/detailed`), and recent error rates by model (`GET /admin/v1/usage` for the
// last hour, one row per model alias: the broker counts calls by the alias clients named).
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, operations, when } from "../api.js";
import { Loading, Problem, share, usePoll } from "../ui.js";

const EVERY_MS = 5000;

async function health() {
  return { ...(await operations("/health/detailed")), read_at: Date.now() / 1000 };
}

function Breakers({ breakers }) {
  const rows = Object.entries(breakers ?? {});
  if (!rows.length) return html`<p class="muted">No breaker has a state yet: every target is closed (healthy).</p>`;
  return html`<table data-testid="breakers" class="compact"><thead><tr><th scope="col">Target</th><th scope="col">Breaker</th></tr></thead>
    <tbody>${rows.map(([target, state]) => html`<tr data-target=${target}><td><code>${target}</code></td>
      <td class=${`breaker ${state}`}>${state}</td></tr>`)}</tbody></table>`;
}

function Pools({ pools }) {
  const rows = Object.entries(pools ?? {});
  return html`<table data-testid="pools"><thead><tr><th scope="col">Pool</th><th scope="col">Topic</th>
    <th scope="col">Consumer group</th><th scope="col">Lag (records not done)</th></tr></thead>
    <tbody>${rows.map(([pool, p]) => html`<tr data-pool=${pool}><td><code>${pool}</code></td><td><code>${p.topic}</code></td>
      <td><code>${p.group}</code></td><td class="lag">${p.error ? html`<span class="problem-text">unreadable (${p.error})</span>` : p.lag}</td></tr>`)}</tbody></table>`;
}

function ErrorRates({ usage }) {
  if (!usage.data.length) return html`<p class="muted">No calls this hour.</p>`;
  return html`<table data-testid="error-rates" class="compact"><thead><tr><th scope="col">Model</th><th scope="col">Calls</th>
    <th scope="col">Errors</th><th scope="col">Error rate</th><th scope="col">p50 / p99 latency</th></tr></thead>
    <tbody>${usage.data.map((r) => html`<tr data-model=${r.model}><td><code>${r.model}</code></td><td>${r.requests}</td>
      <td>${r.errors}</td><td class="rate">${share(r.errors, r.requests)}</td>
      <td>${r.latency_ms.p50 ?? "—"} / ${r.latency_ms.p99 ?? "—"} ms</td></tr>`)}</tbody></table>`;
}

export function PoolsPage() {
  const [live, setLive] = useState(true);
  const status = usePoll(health, EVERY_MS, live);
  const usage = usePoll(() => admin(`/usage?from=${Date.now() / 1000 - 3600}&group_by=model`), EVERY_MS, live);
  const doc = status.data;
  return html`<section aria-labelledby="pools-title">
    <div class="title-row"><h1 id="pools-title">Providers and pools</h1>
      <label><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.target.checked)} /> Refresh every ${EVERY_MS / 1000} s</label>
      ${doc && html`<span class="muted" data-testid="read-at">read ${when(doc.read_at)}</span>`}</div>
    <${Problem} error=${status.error} /><${Loading} when=${status.loading && !doc} />
    ${doc && html`<p data-testid="reachability">Kafka: <strong>${doc.checks.kafka}</strong> · Redis: <strong>${doc.checks.redis}</strong></p>
      <div class="columns">
        <section aria-labelledby="breakers-title"><h2 id="breakers-title">Circuit breakers</h2><${Breakers} breakers=${doc.breakers} /></section>
        <section aria-labelledby="rates-title"><h2 id="rates-title">Calls this hour and the last, by model</h2>
          <${Problem} error=${usage.error} />${usage.data && html`<${ErrorRates} usage=${usage.data} />`}</section>
      </div>
      <h2>Pools</h2><${Pools} pools=${doc.pools} />`}
  </section>`;
}
