// Requests: one request by id, told as its story (`GET /admin/v1/requests/{id}/story`):
// accepted, queued, each attempt with target, status and duration, fallbacks, the end, cost,
// and its webhook deliveries with redeliver.
import { html, useEffect, useState } from "../../vendor/preact-htm.mjs";
import { admin, usd, when } from "../api.js";
import { Done, Problem, can, useAction } from "../ui.js";

const ms = (value) => (value === undefined || value === null ? "—" : `${Math.round(value)} ms`);

function Deliveries({ log, caller }) {
  const action = useAction();
  const redeliver = (webhookId) =>
    action.run(() => admin(`/webhooks/${webhookId}/redeliver`, { method: "POST" }), () => `Redelivery of ${webhookId} queued.`);
  return html`<section aria-labelledby="deliveries-title"><h2 id="deliveries-title">Webhook deliveries</h2>
    ${log.length === 0 ? html`<p class="muted">None: the request named no webhook, and its tenant has no endpoint for its events.</p>` : html`<table data-testid="request-webhooks"><thead><tr>
      <th scope="col">Webhook id</th><th scope="col">URL</th><th scope="col">Event</th><th scope="col">Attempt</th>
      <th scope="col">Answer</th><th scope="col">Then</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${log.map((d) => html`<tr><td><code>${d.webhook_id}</code></td><td><code>${d.url}</code></td>
        <td>${d.event}</td><td>${d.attempt}</td><td>${d.status ?? d.error ?? "—"}</td><td>${d.outcome ?? d.next ?? "—"}</td>
        <td>${can(caller, "webhooks:write") && html`<button class="secondary" onClick=${() => redeliver(d.webhook_id)}>Redeliver</button>`}</td></tr>`)}</tbody></table>`}
    <${Problem} error=${action.error} /><${Done} text=${action.done} />
  </section>`;
}

function Step({ s }) {
  const label = { accepted: "Accepted", queued: "Queued", waited: "Waited", waiting: "Waiting now", fallback: "Fell back",
    attempt: `Attempt ${s.attempt}` }[s.step] ?? `Ended: ${s.step}`;
  let detail = "";
  if (s.reasons) detail = html`${s.reasons.map((r) => html`<code>${r}</code> `)}${s.until ? html`until ${when(s.until)}` : ""}`;
  else if (s.step === "fallback") detail = html`<code>${s.from}</code> → <code>${s.to}</code>`;
  else if (s.step === "attempt") detail = html`<code>${s.target}</code> ${s.status === "ok" ? "answered" : html`failed: <code>${s.error_code}</code>`}
    ${s.cached ? " (from the response cache)" : ""}`;
  else if (s.error) detail = html`<code>${s.error.code ?? s.error.type}</code> ${s.error.message}`;
  const status = s.step === "attempt" ? s.status : "";
  return html`<tr class=${`step-${s.step} ${status}`}><td>${label}</td><td>${when(s.at)}</td><td>${detail}</td>
    <td>${s.duration_ms !== undefined ? ms(s.duration_ms) : ""}</td>
    <td>${s.step === "attempt" && s.cost_usd !== undefined ? usd(s.cost_usd) : ""}</td></tr>`;
}

function Story({ story, caller }) {
  const doc = story.request;
  const error = doc.error ?? null;
  return html`<dl class="facts" data-testid="request-status">
    <dt>Status</dt><dd class="status">${doc.status}</dd>
    <dt>Tenant</dt><dd>${story.tenant}</dd>
    <dt>Accepted</dt><dd>${when(story.accepted_at)}</dd>
    ${doc.served_by && html`<dt>Served by</dt><dd>${doc.served_by.provider}/${doc.served_by.model}</dd>`}
    ${doc.total_ms !== undefined && html`<dt>Took</dt><dd>${ms(doc.total_ms)} (queued ${ms(doc.queued_ms)}, service ${ms(doc.service_ms)})</dd>`}
    <dt>Attempts</dt><dd data-testid="request-attempt-count">${doc.attempts ?? story.attempts.length}</dd>
    <dt>Fallbacks</dt><dd>${story.fallbacks}</dd>
    <dt>Cost</dt><dd>${usd(story.cost_usd ?? doc.cost_usd)}</dd>
    ${error && html`<dt>Error</dt><dd><code>${error.code ?? error.type}</code> ${error.message}</dd>`}
  </dl>
  <section aria-labelledby="story-title"><h2 id="story-title">What happened</h2>
    ${story.attempts.length === 0 && html`<p class="muted">No provider call recorded (yet): calls are told by the usage
      consumer a moment after they end; a request that is still queued has none.</p>`}
    <table data-testid="request-story"><thead><tr><th scope="col">Step</th><th scope="col">When</th>
      <th scope="col">What</th><th scope="col">Duration</th><th scope="col">Cost</th></tr></thead>
      <tbody>${story.timeline.map((s) => html`<${Step} s=${s} />`)}</tbody></table>
  </section>
  <${Deliveries} log=${story.webhooks} caller=${caller} />
  <details><summary>The whole story document</summary><pre>${JSON.stringify(story, null, 2)}</pre></details>`;
}

export function RequestsPage({ caller, args: [initial] }) {
  const [id, setId] = useState(initial ?? "");
  const [story, setStory] = useState(null);
  const action = useAction();
  const look = async (event) => {
    event?.preventDefault();
    setStory(null);
    const found = await action.run(() => admin(`/requests/${encodeURIComponent(id.trim())}/story`));
    if (found) setStory(found);
  };
  useEffect(() => {
    if (initial) look();  // linked from elsewhere (a dead letter)
  }, [initial]);
  return html`<section aria-labelledby="requests-title">
    <h1 id="requests-title">Requests</h1>
    <form class="inline" onSubmit=${look} aria-label="Find a request">
      <label for="request-id">Request id</label>
      <input id="request-id" required value=${id} onInput=${(e) => setId(e.target.value)} placeholder="req_…" />
      <button type="submit" disabled=${action.busy}>Look up</button>
      ${story && html`<button type="button" class="secondary" onClick=${look}>Refresh</button>`}
    </form>
    <${Problem} error=${action.error} />
    ${story && html`<${Story} key=${story.id} story=${story} caller=${caller} />`}
  </section>`;
}
