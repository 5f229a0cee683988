// A uPlot chart of one measure by model over time buckets, with a table of the same numbers
// (the table is what screen readers and the browser tests read).
import { html, useEffect, useRef } from "../vendor/preact-htm.mjs";
import uPlot from "../vendor/uPlot.esm.js";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

/** Rows of `{[bucket]: seconds, model, ...}` → x values and one y array per model. */
export function pivot(rows, bucket, measure) {
  const xs = [...new Set(rows.map((r) => r[bucket]))].sort((a, b) => a - b);
  const models = [...new Set(rows.map((r) => r.model ?? "(none)"))].sort();
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = models.map(() => xs.map(() => 0));
  for (const r of rows) {
    ys[models.indexOf(r.model ?? "(none)")][index.get(r[bucket])] += measure(r);
  }
  return { xs, models, ys };
}

export function UsageChart({ title, rows, bucket, measure, span, format = (v) => String(v) }) {
  const box = useRef(null);
  const { xs, models, ys } = pivot(rows, bucket, measure);
  useEffect(() => {
    if (!box.current || xs.length === 0) return undefined;
    const chart = new uPlot(
      {
        width: Math.min(box.current.clientWidth || 640, 900),
        height: 220,
        series: [
          {},
          ...models.map((model, i) => ({
            label: model,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            points: { show: true, size: 7 },
            value: (_, v) => (v === null ? "—" : format(v)),
          })),
        ],
        axes: [{}, { values: (_, ticks) => ticks.map(format), size: 80 }],
        // The x axis spans the asked window, so one bucket is a point in it, not the whole axis.
        scales: { x: { time: true, range: () => span }, y: { range: (_, min, max) => [0, Math.max(max * 1.1, 1e-9)] } },
      },
      [xs, ...ys],
      box.current,
    );
    return () => chart.destroy();
  }, [JSON.stringify([xs, ys, models, span])]);
  const label = title.toLowerCase().replace(/\W+/g, "-");
  return html`<figure class="chart" aria-labelledby=${label}>
    <figcaption id=${label}>${title}</figcaption>
    ${xs.length === 0 ? html`<p class="muted">No usage in this window yet.</p>` : html`<div ref=${box} aria-hidden="true"></div>`}
    ${xs.length > 0 && html`<table class="compact" data-testid=${`table-${label}`}>
      <thead><tr><th scope="col">${bucket}</th>${models.map((m) => html`<th scope="col">${m}</th>`)}</tr></thead>
      <tbody>${xs.map((x, i) => html`<tr>
        <th scope="row">${new Date(x * 1000).toISOString().slice(0, bucket === "day" ? 10 : 16).replace("T", " ")}</th>
        ${ys.map((y) => html`<td>${format(y[i])}</td>`)}</tr>`)}</tbody>
    </table>`}
  </figure>`;
}
