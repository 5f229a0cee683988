// Requests: one request by id: its status document (the tenant's route), and its webhook
// deliveries with redeliver (the admin route).
import { html, useEffect, useState } from "../../vendor/preact-htm.mjs";
import { admin, tenantApi, usd, when } from "../api.js";
import { Done, Problem, can, useAction } from "../ui.js";
import { TenantKey, needsTenantKey } from "./tenantkey.js";

function Deliveries({ id, caller }) {
  const [log, setLog] = useState(null);
  const action = useAction();
  const load = () => action.run(() => admin(`/requests/${encodeURIComponent(id)}/webhooks`)).then((l) => l && setLog(l.data));
  if (log === null) return html`<p><button class="secondary" onClick=${load}>Show webhook deliveries</button>
    <${Problem} error=${action.error} /></p>`;
  const redeliver = (webhookId) =>
    action.run(() => admin(`/webhooks/${webhookId}/redeliver`, { method: "POST" }), () => `Redelivery of ${webhookId} queued.`);
  return html`<section aria-labelledby="deliveries-title"><h2 id="deliveries-title">Webhook deliveries</h2>
    ${log.length === 0 ? html`<p class="muted">None.</p>` : html`<table><thead><tr>
      <th scope="col">Webhook id</th><th scope="col">URL</th><th scope="col">Event</th><th scope="col">Attempt</th>
      <th scope="col">Answer</th><th scope="col">Then</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${log.map((d) => html`<tr><td><code>${d.webhook_id}</code></td><td><code>${d.url}</code></td>
        <td>${d.event}</td><td>${d.attempt}</td><td>${d.status ?? d.error ?? "—"}</td><td>${d.outcome ?? d.next ?? "—"}</td>
        <td>${can(caller, "webhooks:write") && html`<button class="secondary" onClick=${() => redeliver(d.webhook_id)}>Redeliver</button>`}</td></tr>`)}</tbody></table>`}
    <${Problem} error=${action.error} /><${Done} text=${action.done} />
  </section>`;
}

function Story({ doc }) {
  const result = doc.result ?? doc.response ?? null;
  const error = doc.error ?? result?.error ?? null;
  const cost = doc.cost_usd ?? null;
  return html`<dl class="facts" data-testid="request-status">
    <dt>Status</dt><dd class="status">${doc.status}</dd>
    ${doc.served_by && html`<dt>Served by</dt><dd>${doc.served_by.provider}/${doc.served_by.model}</dd>`}
    ${doc.total_ms !== undefined && html`<dt>Took</dt><dd>${doc.total_ms} ms (queued ${doc.queued_ms ?? "—"} ms, service ${doc.service_ms ?? "—"} ms)</dd>`}
    ${doc.attempts !== undefined && html`<dt>Attempts</dt><dd data-testid="request-attempts">${doc.attempts}</dd>`}
    ${cost !== null && html`<dt>Cost</dt><dd>${usd(cost)}</dd>`}
    ${doc.finished_at && html`<dt>Finished</dt><dd>${when(doc.finished_at)}</dd>`}
    ${error && html`<dt>Error</dt><dd><code>${error.code ?? error.type}</code> ${error.message}</dd>`}
  </dl>
  <details><summary>The whole status document</summary><pre>${JSON.stringify(doc, null, 2)}</pre></details>`;
}

export function RequestsPage({ caller, args: [initial] }) {
  const [id, setId] = useState(initial ?? "");
  const [doc, setDoc] = useState(null);
  const [, setKeyTick] = useState(0);
  const action = useAction();
  const look = async (event) => {
    event?.preventDefault();
    setDoc(null);
    const found = await action.run(() => tenantApi(`/requests/${encodeURIComponent(id.trim())}`));
    if (found) setDoc(found);
  };
  useEffect(() => {
    if (initial && !needsTenantKey(caller)) look();  // linked from elsewhere (a dead letter)
  }, [initial]);
  return html`<section aria-labelledby="requests-title">
    <h1 id="requests-title">Requests</h1>
    <${TenantKey} caller=${caller} onSet=${() => setKeyTick((t) => t + 1)} />
    <form class="inline" onSubmit=${look} aria-label="Find a request">
      <label for="request-id">Request id</label>
      <input id="request-id" required value=${id} onInput=${(e) => setId(e.target.value)} placeholder="req_…" />
      <button type="submit" disabled=${action.busy || needsTenantKey(caller)}>Look up</button>
    </form>
    <${Problem} error=${action.error} />
    ${doc && html`<${Story} doc=${doc} /><${Deliveries} key=${doc.id} id=${doc.id} caller=${caller} />`}
    <p class="muted">Each attempt's target and duration, and why it queued, are not in any
      API answer yet: the status document shows the outcome.</p>
  </section>`;
}
