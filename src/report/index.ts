/** Reports: self-contained HTML with server-rendered SVG charts (Vega-Lite → Vega), CSV and JSON writers. */
export { barChart, lineChart, renderSvg, type VegaLiteSpec } from './charts.js';
export {
  type ResultFs,
  recordsToCsv,
  toCsv,
  writeCsv,
  writeHtml,
  writeJson,
  writeResultFile,
} from './files.js';
export {
  escapeHtml,
  type Report,
  type ReportSection,
  type ReportTable,
  renderReport,
  renderTable,
} from './html.js';
