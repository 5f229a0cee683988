// Dead letters: browse by kind and source with the reason; replay one or a selection.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, when } from "../api.js";
import { Done, Loading, Problem, can, useAction, useLoad } from "../ui.js";

export function DeadLettersPage({ caller }) {
  const [kind, setKind] = useState("");
  const [source, setSource] = useState("");
  const [picked, setPicked] = useState(new Set());
  const action = useAction();
  const { data, error, loading, reload } = useLoad(() => admin("/dlq?limit=500"));
  const letters = (data?.data ?? []).filter(
    (d) => (!kind || d.kind === kind) && (!source || d.source.includes(source)));
  const toggle = (offset) => {
    const next = new Set(picked);
    next.has(offset) ? next.delete(offset) : next.add(offset);
    setPicked(next);
  };
  const replay = (offsets) =>
    action.run(async () => {
      const sent = [];
      for (const offset of offsets) sent.push(await admin(`/dlq/${offset}/replay`, { method: "POST" }));
      return sent;
    }, (sent) => `Replayed ${sent.length}: ${sent.map((s) => s.request_id ?? s.topic).join(", ")}`).then(() => {
      setPicked(new Set());
      reload();
    });
  const writable = can(caller, "dlq:write");
  return html`<section aria-labelledby="dlq-title">
    <div class="title-row"><h1 id="dlq-title">Dead letters</h1>
      <button class="secondary" onClick=${reload}>Refresh</button></div>
    <form class="inline" aria-label="Filter dead letters" onSubmit=${(e) => e.preventDefault()}>
      <label for="dlq-kind">Kind</label>
      <select id="dlq-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}>
        <option value="">any</option><option value="exhausted">exhausted</option>
        <option value="poison">poison</option><option value="internal">internal</option></select>
      <label for="dlq-source">Source contains</label>
      <input id="dlq-source" value=${source} onInput=${(e) => setSource(e.target.value)} />
      ${writable && html`<button type="button" disabled=${picked.size === 0 || action.busy}
        onClick=${() => replay([...picked])}>Replay selected (${picked.size})</button>`}
    </form>
    <${Problem} error=${error || action.error} /><${Done} text=${action.done} /><${Loading} when=${loading && !data} />
    ${data && html`<table data-testid="dlq"><thead><tr>${writable && html`<th scope="col"><span class="sr-only">Select</span></th>`}
      <th scope="col">Offset</th><th scope="col">Kind</th><th scope="col">Reason</th><th scope="col">Source</th>
      <th scope="col">Request</th><th scope="col">At</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${letters.map((d) => html`<tr data-offset=${d.offset} data-request=${d.request?.id}>
        ${writable && html`<td><input type="checkbox" aria-label=${`Select dead letter ${d.offset}`}
          checked=${picked.has(d.offset)} onChange=${() => toggle(d.offset)} /></td>`}
        <td>${d.offset}</td><td>${d.kind}</td><td>${d.reason}</td><td><code>${d.source}</code></td>
        <td>${d.request ? html`<a href=${`#/requests/${d.request.id}`}>${d.request.id}</a> <span class="muted">${d.request.tenant} · ${d.request.model}</span>` : "—"}</td>
        <td>${when(d.at)}</td>
        <td>${writable && html`<button class="secondary" disabled=${action.busy} onClick=${() => replay([d.offset])}>Replay</button>`}</td>
      </tr>`)}</tbody></table>
      ${letters.length === 0 && html`<p class="muted">No dead letters.</p>`}`}
  </section>`;
}
