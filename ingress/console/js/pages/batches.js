// Batches: the tenant's batches with progress, cancel, and the output and error files.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { download, tenantApi, when } from "../api.js";
import { Done, Loading, Problem, useAction, useLoad } from "../ui.js";
import { TenantKey, needsTenantKey } from "./tenantkey.js";

const RUNNING = new Set(["validating", "in_progress"]);

function BatchRow({ batch, onChanged }) {
  const action = useAction();
  const counts = batch.request_counts ?? { total: 0, completed: 0, failed: 0 };
  const done = counts.completed + counts.failed;
  const cancel = () =>
    action.run(() => tenantApi(`/batches/${batch.id}/cancel`, { method: "POST" }), (b) => `Now ${b.status}.`).then(onChanged);
  const file = (id, what) =>
    id && html`<button class="secondary" onClick=${() => action.run(() => download(`/files/${id}/content`, `${batch.id}-${what}.jsonl`))}>${what}</button>`;
  return html`<tr data-batch=${batch.id}>
    <td><code>${batch.id}</code></td><td>${batch.endpoint}</td><td class="status">${batch.status}</td>
    <td><progress max=${counts.total || 1} value=${done} aria-label=${`${done} of ${counts.total} lines done`}></progress>
      <span class="counts">${counts.completed} ok · ${counts.failed} failed · ${counts.total} total${
        batch.aibroker_offloaded_lines ? ` · ${batch.aibroker_offloaded_lines} via provider batch` : ""}</span></td>
    <td>${when(batch.created_at)}</td>
    <td>${RUNNING.has(batch.status) && html`<button class="danger" disabled=${action.busy} onClick=${cancel}>Cancel</button>`}
      ${file(batch.output_file_id, "output")} ${file(batch.error_file_id, "errors")}
      <${Problem} error=${action.error} /><${Done} text=${action.done} /></td>
  </tr>`;
}

export function BatchesPage({ caller }) {
  const [tick, setTick] = useState(0);
  const blocked = needsTenantKey(caller);
  const { data, error, loading, reload } = useLoad(
    () => (blocked ? Promise.resolve(null) : tenantApi("/batches?limit=100")), [tick, blocked]);
  return html`<section aria-labelledby="batches-title">
    <div class="title-row"><h1 id="batches-title">Batches</h1>
      <button class="secondary" onClick=${reload}>Refresh</button></div>
    <${TenantKey} caller=${caller} onSet=${() => setTick((t) => t + 1)} />
    <${Problem} error=${error} /><${Loading} when=${loading && !data && !blocked} />
    ${data && (data.data.length === 0 ? html`<p class="muted">No batches.</p>` : html`<table data-testid="batches">
      <thead><tr><th scope="col">Batch</th><th scope="col">Endpoint</th><th scope="col">Status</th><th scope="col">Progress</th>
        <th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${data.data.map((b) => html`<${BatchRow} key=${b.id} batch=${b} onChanged=${reload} />`)}</tbody></table>`)}
  </section>`;
}
