/** CSV and JSON writers shared by every report. */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MigrationError } from '../errors.js';

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

/** The file operations a result file needs (tests inject a full disk). */
export interface ResultFs {
  mkdir(dir: string, o: { recursive: true }): Promise<unknown>;
  writeFile(path: string, data: string | Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, o: { force: true }): Promise<void>;
}

const nodeFs: ResultFs = { mkdir, writeFile, rename, rm };

/**
 * Writes a result file whole or not at all: into a temporary file beside it, renamed over the target once
 * complete. On a full disk the target keeps its previous content (if any), the partial temporary file is removed,
 * and the error is DISK_FULL naming the path; nothing else in the folder is touched.
 */
export async function writeResultFile(
  path: string,
  data: string | Uint8Array,
  fs: ResultFs = nodeFs,
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    await fs.mkdir(dirname(path), { recursive: true });
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new MigrationError(
        'DISK_FULL',
        `disk full: cannot write ${path} (${code}); no result file was left half-written — free some space or ` +
          'write the results elsewhere (--out DIR)',
        { path, errno: code },
        { cause: err },
      );
    }
    throw err;
  }
}

function writeText(path: string, text: string): Promise<void> {
  return writeResultFile(path, text);
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
