// Cache, guardrails and Responses: the response cache's hit rates and dollars saved by tenant
// and alias (`GET /admin/v1/cache/stats`), the requests the guardrails blocked, from the audit
// log (`GET /admin/v1/audit?action=guardrails`), and the background Responses in flight
// (`GET /admin/v1/responses`). Redactions are counted in Prometheus only
// (`aibroker_guard_findings_total`): no API answers them per request.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, usd, when } from "../api.js";
import { Loading, Problem, share, usePoll } from "../ui.js";

const EVERY_MS = 10000;
const DAY_S = 86400;

function served(row) {
  return (row.hit ?? 0) + (row.semantic ?? 0);
}

function CacheStats({ stats }) {
  const rows = stats.data;
  const hits = rows.reduce((n, r) => n + served(r), 0);
  const looked = rows.reduce((n, r) => n + served(r) + (r.miss ?? 0), 0);
  const saved = rows.reduce((n, r) => n + Number(r.saved_usd ?? 0), 0);
  return html`<dl class="facts" data-testid="cache-totals">
      <dt>Hit rate</dt><dd class="hit-rate">${share(hits, looked)} (${hits} of ${looked} lookups)</dd>
      <dt>Saved</dt><dd class="saved">${usd(saved)}</dd>
      <dt>Entries stored now</dt><dd>${stats.entries}</dd>
    </dl>
    ${rows.length === 0 ? html`<p class="muted">No lookups counted yet.</p>` : html`<table data-testid="cache-stats"><thead><tr>
      <th scope="col">Tenant</th><th scope="col">Model</th><th scope="col">Hits</th><th scope="col">Semantic hits</th>
      <th scope="col">Misses</th><th scope="col">Bypasses</th><th scope="col">Hit rate</th><th scope="col">Saved</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr data-row=${`${r.tenant}/${r.model}`}><td>${r.tenant}</td><td><code>${r.model}</code></td>
        <td>${r.hit}</td><td>${r.semantic ?? 0}</td><td>${r.miss}</td><td>${r.bypass}</td>
        <td class="rate">${share(served(r), served(r) + r.miss)}</td><td>${usd(r.saved_usd ?? 0)}</td></tr>`)}</tbody></table>`}`;
}

async function blocks() {
  const query = new URLSearchParams({ action: "guardrails", from: String(Date.now() / 1000 - DAY_S), limit: 500 });
  const page = await admin(`/audit?${query}`);
  return { ...page, data: page.data.filter((e) => e.action.endsWith(".block")) };
}

function GuardHits({ page }) {
  const counts = {};
  for (const e of page.data) {
    const key = `${e.action.split(".")[1]}\t${e.tenant ?? "—"}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const rows = Object.entries(counts).sort();
  return html`${rows.length === 0 ? html`<p class="muted">No request blocked in the last 24 hours${page.has_more ? " (so far: the log is long; the rest is in Audit)" : ""}.</p>`
    : html`<table data-testid="guard-hits" class="compact"><thead><tr><th scope="col">Guard</th><th scope="col">Tenant</th>
      <th scope="col">Blocked</th></tr></thead><tbody>${rows.map(([key, n]) => {
        const [guard, tenant] = key.split("\t");
        return html`<tr><td><code>${guard}</code></td><td>${tenant}</td><td>${n}</td></tr>`;
      })}</tbody></table>
      <table class="compact"><thead><tr><th scope="col">At</th><th scope="col">Guard</th><th scope="col">Tenant</th><th scope="col">Request</th></tr></thead>
      <tbody>${page.data.slice(-10).reverse().map((e) => html`<tr><td>${when(e.at)}</td><td>${e.action}</td><td>${e.tenant ?? "—"}</td>
        <td><code>${e.target ?? "—"}</code></td></tr>`)}</tbody></table>
      <p class="muted">A request blocked at ingress was never accepted, so it has no story; one blocked by the dispatcher ends failed.</p>`}`;
}

function InFlight({ page }) {
  const now = Date.now() / 1000;
  return page.data.length === 0 ? html`<p class="muted">No background response in flight.</p>`
    : html`<table data-testid="responses-in-flight" class="compact"><thead><tr><th scope="col">Response</th>
      <th scope="col">Tenant</th><th scope="col">Model</th><th scope="col">Status</th><th scope="col">Age</th></tr></thead>
      <tbody>${page.data.map((r) => html`<tr><td><a href=${`#/requests/${r.id}`}><code>${r.id}</code></a></td><td>${r.tenant}</td>
        <td><code>${r.model ?? "—"}</code></td><td>${r.status}</td><td>${Math.max(0, Math.round(now - r.created_at))} s</td></tr>`)}</tbody></table>`;
}

export function InsightsPage() {
  const [live, setLive] = useState(true);
  const stats = usePoll(() => admin("/cache/stats"), EVERY_MS, live);
  const guards = usePoll(blocks, 3 * EVERY_MS, live);  // a scan of the audit topic: less often
  const background = usePoll(() => admin("/responses"), EVERY_MS, live);
  return html`<section aria-labelledby="insights-title">
    <div class="title-row"><h1 id="insights-title">Cache, guardrails and Responses</h1>
      <label><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.target.checked)} /> Refresh every ${EVERY_MS / 1000} s</label></div>
    <section aria-labelledby="cache-title"><h2 id="cache-title">Response cache</h2>
      <${Problem} error=${stats.error} /><${Loading} when=${stats.loading && !stats.data} />
      ${stats.data && html`<${CacheStats} stats=${stats.data} />`}</section>
    <section aria-labelledby="guards-title"><h2 id="guards-title">Guardrail blocks (last 24 hours)</h2>
      <${Problem} error=${guards.error} /><${Loading} when=${guards.loading && !guards.data} />
      ${guards.data && html`<${GuardHits} page=${guards.data} />`}
      <p class="muted">Redactions are counted in Prometheus (<code>aibroker_guard_findings_total</code>), not per request.</p></section>
    <section aria-labelledby="background-title"><h2 id="background-title">Background responses in flight</h2>
      <${Problem} error=${background.error} /><${Loading} when=${background.loading && !background.data} />
      ${background.data && html`<${InFlight} page=${background.data} />`}</section>
  </section>`;
}
