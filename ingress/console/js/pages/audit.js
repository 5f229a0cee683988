// Audit: who did what to which object, filtered by actor, action, tenant and time, paged on.
import { html, useState } from "../../vendor/preact-htm.mjs";
import { admin, when } from "../api.js";
import { Problem, useAction } from "../ui.js";

const FIELDS = [["actor", "Actor"], ["action", "Action"], ["tenant", "Tenant"]];

export function AuditPage() {
  const [filters, setFilters] = useState({ actor: "", action: "", tenant: "", from: "", to: "" });
  const [page, setPage] = useState(null);
  const action = useAction();
  const search = async (after = -1, more = []) => {
    const query = new URLSearchParams({ after, limit: 100 });
    for (const [k, v] of Object.entries(filters)) {
      if (!v) continue;
      query.set(k, k === "from" || k === "to" ? String(Date.parse(v) / 1000) : v);
    }
    const found = await action.run(() => admin(`/audit?${query}`));
    if (found) setPage({ ...found, data: [...more, ...found.data] });
  };
  const submit = (event) => {
    event.preventDefault();
    search();
  };
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.target.value });
  return html`<section aria-labelledby="audit-title">
    <h1 id="audit-title">Audit</h1>
    <form class="inline" onSubmit=${submit} aria-label="Filter the audit log">
      ${FIELDS.map(([k, label]) => html`<label for=${`audit-${k}`}>${label}</label>
        <input id=${`audit-${k}`} value=${filters[k]} onInput=${set(k)} />`)}
      <label for="audit-from">From</label><input id="audit-from" type="datetime-local" value=${filters.from} onInput=${set("from")} />
      <label for="audit-to">To</label><input id="audit-to" type="datetime-local" value=${filters.to} onInput=${set("to")} />
      <button type="submit" disabled=${action.busy}>Search</button>
    </form>
    <${Problem} error=${action.error} />
    ${page && html`<table data-testid="audit"><thead><tr><th scope="col">At</th><th scope="col">Actor</th>
      <th scope="col">Role</th><th scope="col">Action</th><th scope="col">Tenant</th><th scope="col">Target</th><th scope="col">Outcome</th></tr></thead>
      <tbody>${page.data.map((e) => html`<tr><td>${when(e.at)}</td><td><code>${e.actor}</code></td><td>${e.role ?? "—"}</td>
        <td>${e.action}</td><td>${e.tenant ?? "—"}</td><td><code>${e.target ?? ""}</code></td><td>${e.outcome}</td></tr>`)}</tbody></table>
      ${page.data.length === 0 && html`<p class="muted">Nothing matched${page.has_more ? " yet" : ""}.</p>`}
      ${page.has_more && html`<button class="secondary" disabled=${action.busy}
        onClick=${() => search(page.next_after, page.data)}>Read on</button>`}`}
  </section>`;
}
