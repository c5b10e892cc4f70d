/** CSV and JSON writers shared by every report. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

type Cell = string | number | boolean | null | undefined;

function csvCell(v: Cell): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header line. */
export function toCsv(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  return `${[columns.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n')}\n`;
}

/** CSV from an array of flat records (columns = keys of the first record unless given). */
export function recordsToCsv(records: readonly Record<string, Cell>[], columns?: readonly string[]): string {
  const cols = columns ?? (records[0] ? Object.keys(records[0]) : []);
  return toCsv(
    cols,
    records.map((r) => cols.map((c) => r[c])),
  );
}

async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

export function writeCsv(
  path: string,
  columns: readonly string[],
  rows: readonly (readonly Cell[])[],
): Promise<void> {
  return writeText(path, toCsv(columns, rows));
}

export function writeJson(path: string, value: unknown): Promise<void> {
  return writeText(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeHtml(path: string, html: string): Promise<void> {
  return writeText(path, html);
}
