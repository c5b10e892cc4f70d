/**
 * CPU-utilisation traces as CSV (the form Bitbrains, Azure and Google cluster exports come in), in two layouts:
 *
 *  - one file, one VM per column: a header row naming the VMs, then one row per sample; an optional first column
 *    headed `timestamp` or `time` holds the sample times;
 *  - a folder of `*.csv` files, one VM each (the file name without `.csv`), two columns: `timestamp,cpu`.
 *
 * Values are CPU utilisation in percent, 0–100, decimals allowed. Timestamps are seconds (any origin) or ISO 8601
 * dates, increasing by exactly the sample interval. The interval is 300 s unless given (`--interval`); the simulator
 * steps every 300 s, so a finer interval that divides 300 s is averaged over each 5-minute window (a last partial
 * window is dropped) and a coarser one that is a multiple of 300 s is held for its whole length. Each 5-minute value
 * is rounded to a whole percent, as in CloudSim's PlanetLab traces. docs/simulator.md has examples.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';
import { TraceFormatError } from './trace-error.js';
import type { Workload } from './workload.js';

/** The simulator's step: CSV samples are brought to this interval. */
export const SIM_INTERVAL_SECONDS = 300;

/** Checks that a sample interval (seconds) maps onto whole 300-s steps: it divides 300 or is a multiple of it. */
export function checkInterval(seconds: number, flag = '--interval'): void {
  const ok =
    Number.isInteger(seconds) &&
    seconds > 0 &&
    (SIM_INTERVAL_SECONDS % seconds === 0 || seconds % SIM_INTERVAL_SECONDS === 0);
  if (!ok) {
    throw new UsageError(
      `${flag}: ${seconds} s cannot be brought to the simulator's 300-s step; use a whole number of seconds that ` +
        'divides 300 (e.g. 10s, 30s, 1m) or a multiple of 300 (e.g. 15m, 1h)',
      flag,
    );
  }
}

/** Splits one CSV line into trimmed fields; a field wrapped in double quotes loses them ("" inside is a quote). */
function fields(line: string): string[] {
  if (!line.includes('"')) return line.split(',').map((f) => f.trim());
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) {
          value += line.slice(i);
          i = line.length;
          break;
        }
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(',', i);
      out.push(value);
      i = comma < 0 ? line.length + 1 : comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      out.push(line.slice(i, end).trim());
      i = end + 1;
    }
  }
  return out;
}

interface Rows {
  /** 1-based line number of each data row. */
  readonly lines: number[];
  readonly rows: string[][];
  readonly header: string[];
}

function readRows(text: string, file: string): Rows {
  const all = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (all.length > 0 && all[all.length - 1]!.trim() === '') all.pop();
  if (all.length === 0) {
    throw new TraceFormatError({ file }, 'the file is empty; expected a header row, then one row per sample');
  }
  const header = fields(all[0]!.replace(/^\uFEFF/, ''));
  const rows: string[][] = [];
  const lines: number[] = [];
  for (let i = 1; i < all.length; i++) {
    const text = all[i]!;
    const row = text.trim() === '' ? [] : fields(text);
    if (row.length !== header.length) {
      throw new TraceFormatError(
        { file, line: i + 1 },
        `${row.length} ${row.length === 1 ? 'value' : 'values'}, expected ${header.length} (one per header column)`,
      );
    }
    rows.push(row);
    lines.push(i + 1);
  }
  if (rows.length === 0) throw new TraceFormatError({ file, line: 2 }, 'no sample rows after the header row');
  return { header, rows, lines };
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function percent(cell: string, file: string, line: number, column: number, vm: string): number {
  if (!NUMBER.test(cell)) {
    throw new TraceFormatError(
      { file, line, column, vm },
      `${cell === '' ? 'empty value' : `"${cell.slice(0, 40)}" is not a number`}; expected CPU utilisation in percent, 0–100`,
    );
  }
  const x = Number(cell);
  if (!(x >= 0 && x <= 100)) {
    throw new TraceFormatError({ file, line, column, vm }, `${cell} % is out of range; expected 0–100`);
  }
  return x;
}

/** Seconds of a timestamp cell: a number of seconds or an ISO 8601 date. */
function seconds(cell: string, file: string, line: number, column: number): number {
  if (NUMBER.test(cell)) return Number(cell);
  const ms = /^\d{4}-\d\d-\d\d/.test(cell) ? Date.parse(cell) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new TraceFormatError(
      { file, line, column },
      `timestamp "${cell.slice(0, 40)}" is neither seconds nor an ISO 8601 date (e.g. 2011-03-03T00:05:00Z)`,
    );
  }
  return ms / 1000;
}

function checkTimes(rows: Rows, file: string, column: number, intervalSeconds: number): void {
  let prev = Number.NaN;
  rows.rows.forEach((row, i) => {
    const line = rows.lines[i]!;
    const t = seconds(row[column - 1]!, file, line, column);
    if (i > 0 && Math.abs(t - prev - intervalSeconds) > 1e-6) {
      throw new TraceFormatError(
        { file, line, column },
        `timestamp ${row[column - 1]} is ${+(t - prev).toFixed(3)} s after the previous one, expected ` +
          `${intervalSeconds} s (the sample interval: --interval, default 5m); fill gaps or resample first`,
      );
    }
    prev = t;
  });
}

/** Brings values sampled every `intervalSeconds` to 300-s samples, rounded to whole percent. */
export function resample(values: readonly number[], intervalSeconds: number): Uint8Array {
  checkInterval(intervalSeconds);
  if (intervalSeconds >= SIM_INTERVAL_SECONDS) {
    const hold = intervalSeconds / SIM_INTERVAL_SECONDS;
    const out = new Uint8Array(values.length * hold);
    values.forEach((x, i) => {
      out.fill(Math.round(x), i * hold, (i + 1) * hold);
    });
    return out;
  }
  const group = SIM_INTERVAL_SECONDS / intervalSeconds;
  const out = new Uint8Array(Math.floor(values.length / group));
  for (let k = 0; k < out.length; k++) {
    let s = 0;
    for (let j = 0; j < group; j++) s += values[k * group + j]!;
    out[k] = Math.round(s / group);
  }
  return out;
}

function tooShort(file: string, rows: number, intervalSeconds: number): TraceFormatError {
  return new TraceFormatError(
    { file },
    `${rows} rows at ${intervalSeconds}-s intervals make no whole 5-minute sample; expected at least ` +
      `${SIM_INTERVAL_SECONDS / intervalSeconds} rows`,
  );
}

/** Parses the one-file form: a header naming the VMs (optionally `timestamp` first), one row per sample. */
export function parseCsvColumns(
  text: string,
  file: string,
  intervalSeconds = SIM_INTERVAL_SECONDS,
): Workload {
  checkInterval(intervalSeconds);
  const rows = readRows(text, file);
  const timed = /^(timestamp|time)$/i.test(rows.header[0] ?? '');
  const first = timed ? 1 : 0;
  const vmNames = rows.header.slice(first);
  if (vmNames.length === 0) {
    throw new TraceFormatError({ file, line: 1 }, 'the header names no VM; expected one column per VM');
  }
  const seen = new Set<string>();
  vmNames.forEach((name, i) => {
    const place = { file, line: 1, column: first + i + 1 };
    if (name === '') throw new TraceFormatError(place, 'empty VM name in the header row');
    if (name.includes('\n')) throw new TraceFormatError(place, 'VM name with a line break');
    if (seen.has(name))
      throw new TraceFormatError(place, `VM name "${name}" appears twice in the header row`);
    seen.add(name);
  });
  if (timed) checkTimes(rows, file, 1, intervalSeconds);
  const columns = vmNames.map(() => new Array<number>(rows.rows.length));
  rows.rows.forEach((row, r) => {
    vmNames.forEach((vm, i) => {
      columns[i]![r] = percent(row[first + i]!, file, rows.lines[r]!, first + i + 1, vm);
    });
  });
  const perVm = columns.map((c) => resample(c, intervalSeconds));
  const samplesPerVm = perVm[0]!.length;
  if (samplesPerVm === 0) throw tooShort(file, rows.rows.length, intervalSeconds);
  const samples = new Uint8Array(vmNames.length * samplesPerVm);
  perVm.forEach((s, v) => {
    samples.set(s, v * samplesPerVm);
  });
  return { name: basename(file).replace(/\.csv$/i, ''), vmNames, vms: vmNames.length, samplesPerVm, samples };
}

/** Parses one file of the folder form (`timestamp,cpu`) into 300-s samples. */
export function parseCsvVm(text: string, file: string, intervalSeconds = SIM_INTERVAL_SECONDS): Uint8Array {
  checkInterval(intervalSeconds);
  const rows = readRows(text, file);
  if (rows.header.length !== 2) {
    throw new TraceFormatError(
      { file, line: 1 },
      `${rows.header.length} header columns, expected 2: timestamp,cpu (seconds or ISO date, percent)`,
    );
  }
  checkTimes(rows, file, 1, intervalSeconds);
  const vm = basename(file).replace(/\.csv$/i, '');
  const values = rows.rows.map((row, r) => percent(row[1]!, file, rows.lines[r]!, 2, vm));
  const out = resample(values, intervalSeconds);
  if (out.length === 0) throw tooShort(file, rows.rows.length, intervalSeconds);
  return out;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Reads the one-file form. */
export async function loadCsvFile(file: string, intervalSeconds = SIM_INTERVAL_SECONDS): Promise<Workload> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read trace file ${file}: ${(err as Error).message}`, '--day');
  }
  return parseCsvColumns(text, file, intervalSeconds);
}

/** Reads the folder form: every `*.csv` file is one VM, in byte order of the names; all must be equally long. */
export async function loadCsvDir(dir: string, intervalSeconds = SIM_INTERVAL_SECONDS): Promise<Workload> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile() && /\.csv$/i.test(d.name) && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort(byteOrder);
  } catch (err) {
    throw new UsageError(`cannot read trace folder ${dir}: ${(err as Error).message}`, '--day');
  }
  if (names.length === 0) throw new UsageError(`trace folder ${dir} has no .csv files`, '--day');
  const perVm = await Promise.all(
    names.map(async (n) => parseCsvVm(await readFile(join(dir, n), 'utf8'), join(dir, n), intervalSeconds)),
  );
  const samplesPerVm = perVm[0]!.length;
  perVm.forEach((s, v) => {
    if (s.length !== samplesPerVm) {
      throw new TraceFormatError(
        { file: join(dir, names[v]!) },
        `${s.length} five-minute samples, but ${names[0]} has ${samplesPerVm}; every VM needs the same number`,
      );
    }
  });
  const samples = new Uint8Array(names.length * samplesPerVm);
  perVm.forEach((s, v) => {
    samples.set(s, v * samplesPerVm);
  });
  const parts = dir.split(/[\\/]/).filter(Boolean);
  return {
    name: parts[parts.length - 1] ?? dir,
    vmNames: names.map((n) => n.replace(/\.csv$/i, '')),
    vms: names.length,
    samplesPerVm,
    samples,
  };
}
