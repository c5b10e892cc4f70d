/**
 * Self-contained HTML reports: a title, an introduction, and sections with text, a table and SVG charts. No script,
 * no external resource: the file can be mailed, archived or attached to CI.
 */
import { renderSvg, type VegaLiteSpec } from './charts.js';

export interface ReportTable {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number | null | undefined)[])[];
}

export interface ReportSection {
  readonly heading: string;
  /** Plain text; blank lines separate paragraphs. */
  readonly text?: string;
  readonly table?: ReportTable;
  readonly charts?: readonly VegaLiteSpec[];
}

export interface Report {
  readonly title: string;
  readonly intro?: string;
  readonly sections: readonly ReportSection[];
  /** Shown in the footer (command line, version, date). */
  readonly footer?: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function paragraphs(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim())}</p>`)
    .join('\n');
}

function formatCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 100 ? v.toFixed(2) : v.toPrecision(4);
  }
  return escapeHtml(v);
}

export function renderTable(t: ReportTable): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows
    .map(
      (r) =>
        `<tr>${r.map((c) => `<td${typeof c === 'number' ? ' class="n"' : ''}>${formatCell(c)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<div class="table"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f4f4f4}
td{white-space:nowrap}.table{overflow-x:auto}td.n{text-align:right;font-variant-numeric:tabular-nums}.chart{margin:1em 0}footer{color:#777;margin-top:3em;font-size:.9em}`;

/** Renders the report to one HTML string (charts rendered to inline SVG). */
export async function renderReport(report: Report): Promise<string> {
  const sections: string[] = [];
  for (const s of report.sections) {
    const parts = [`<h2>${escapeHtml(s.heading)}</h2>`];
    if (s.text) parts.push(paragraphs(s.text));
    if (s.table) parts.push(renderTable(s.table));
    for (const spec of s.charts ?? []) parts.push(`<div class="chart">${await renderSvg(spec)}</div>`);
    sections.push(`<section>\n${parts.join('\n')}\n</section>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(report.title)}</title>
<style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(report.title)}</h1>
${report.intro ? paragraphs(report.intro) : ''}
${sections.join('\n')}
${report.footer ? `<footer>${escapeHtml(report.footer)}</footer>` : ''}
</body></html>
`;
}
