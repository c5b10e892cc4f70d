/**
 * Where a workload comes from, as plain data (it crosses worker-thread boundaries in a `SimJob`), and how a name or
 * path typed after `--day` / `--days` becomes one:
 *
 *  - a bundled PlanetLab day by name (`20110303`), or `all` for the ten (`--days` only);
 *  - a folder in CloudSim's format (one file per VM, one integer % per line, 288 lines);
 *  - a folder of per-VM `*.csv` files (`timestamp,cpu`), or one `.csv` file with one VM per column (csv.ts);
 *  - a livemig trace pack (`*.trace.br`, tracepack.ts);
 *  - for `--days`: a folder of day folders or of trace packs expands to its days; comma lists are split.
 *
 * A bare name that is a bundled day means the bundled day; write `./20110303` for a folder of that name.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { isPlanetlabDay, loadPlanetlabDay, PLANETLAB_DAYS } from './bundled.js';
import { loadCsvDir, loadCsvFile, SIM_INTERVAL_SECONDS } from './csv.js';
import { loadTracePack, TRACE_PACK_EXT } from './tracepack.js';
import { loadTraceDir, type Workload } from './workload.js';

export type TraceSource =
  /** A day shipped in data/planetlab. */
  | { readonly bundled: string }
  /** A CloudSim-format folder, or a folder of per-VM CSV files sampled every `interval` seconds. */
  | { readonly dir: string; readonly interval?: number }
  /** A one-VM-per-column CSV file (sampled every `interval` seconds) or a trace pack. */
  | { readonly file: string; readonly interval?: number };

const isCsv = (name: string) => /\.csv$/i.test(name);
const isPack = (name: string) => name.endsWith(TRACE_PACK_EXT);

async function folderEntries(dir: string, flag: string) {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${dir}: ${(err as Error).message}`, flag);
  }
}

/** A folder holding sub-folders or trace packs is a folder of days. */
async function daysIn(dir: string, flag: string): Promise<TraceSource[]> {
  const entries = await folderEntries(dir, flag);
  const days: TraceSource[] = entries
    .filter((e) => e.isDirectory())
    .map((e) => ({ dir: join(dir, e.name) }) as TraceSource)
    .concat(entries.filter((e) => e.isFile() && isPack(e.name)).map((e) => ({ file: join(dir, e.name) })));
  const key = (s: TraceSource) => ('dir' in s ? s.dir : 'file' in s ? s.file : s.bundled);
  return days.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function notCsv(interval: number | undefined, what: string, flag: string): void {
  if (interval !== undefined && interval !== SIM_INTERVAL_SECONDS) {
    throw new UsageError(
      `--interval applies to CSV traces only; ${what} holds 5-minute samples (drop --interval)`,
      flag,
    );
  }
}

/**
 * Resolves what the user typed after `--day` (`many` false: exactly one workload) or `--days` (`many` true).
 * `interval` is the CSV sample interval in seconds (`--interval`; default 300).
 */
export async function resolveTraces(
  arg: string,
  opts: { many: boolean; interval?: number },
): Promise<TraceSource[]> {
  const flag = opts.many ? '--days' : '--day';
  const { interval } = opts;
  const withInterval = interval === undefined ? {} : { interval };
  if (opts.many && arg === 'all') {
    notCsv(interval, 'the bundled PlanetLab data', flag);
    return PLANETLAB_DAYS.map((bundled) => ({ bundled }));
  }
  if (isPlanetlabDay(arg)) {
    notCsv(interval, 'the bundled PlanetLab data', flag);
    return [{ bundled: arg }];
  }
  const st = await stat(arg).catch(() => undefined);
  if (!st) {
    if (arg.includes(',')) {
      if (!opts.many) throw new UsageError(`--day takes one workload; for several use --days ${arg}`, flag);
      const parts = arg.split(',').filter(Boolean);
      return (await Promise.all(parts.map((p) => resolveTraces(p, opts)))).flat();
    }
    const days = `${PLANETLAB_DAYS.join(', ')}${opts.many ? ' or all' : ''}`;
    if (/^\d{8}$/.test(arg)) {
      throw new UsageError(`${flag}: no bundled PlanetLab day "${arg}"; the bundled days are ${days}`, flag);
    }
    throw new UsageError(
      `${flag}: "${arg}" is neither a bundled PlanetLab day (${days}) nor an existing file or folder`,
      flag,
    );
  }
  if (st.isFile()) {
    if (isCsv(arg)) return [{ file: arg, ...withInterval }];
    if (isPack(arg)) {
      notCsv(interval, arg, flag);
      return [{ file: arg }];
    }
    throw new UsageError(
      `${flag}: ${arg} is a file but neither a .csv file (one VM per column) nor a trace pack (${TRACE_PACK_EXT}); ` +
        "a trace in CloudSim's format is a folder with one file per VM",
      flag,
    );
  }
  const days = await daysIn(arg, flag);
  if (days.length > 0) {
    if (!opts.many) {
      throw new UsageError(
        `--day: ${arg} holds several days (folders or ${TRACE_PACK_EXT} files); use --days ${arg}, or --day with one of them`,
        flag,
      );
    }
    for (const d of days) if ('dir' in d && !(await isCsvFolder(d.dir, flag))) notCsv(interval, d.dir, flag);
    return days.map((d) => ('dir' in d ? { ...d, ...withInterval } : d));
  }
  if (!(await isCsvFolder(arg, flag))) notCsv(interval, `${arg} (CloudSim's format)`, flag);
  return [{ dir: arg, ...withInterval }];
}

async function isCsvFolder(dir: string, flag: string): Promise<boolean> {
  return (await folderEntries(dir, flag)).some((e) => e.isFile() && isCsv(e.name));
}

/** Loads a source (no caching: see `loadTraceSourceCached`). */
export async function loadTraceSource(source: TraceSource): Promise<Workload> {
  if ('bundled' in source) return loadPlanetlabDay(source.bundled);
  const interval = source.interval ?? SIM_INTERVAL_SECONDS;
  if ('file' in source)
    return isCsv(source.file) ? loadCsvFile(source.file, interval) : loadTracePack(source.file);
  if (await isCsvFolder(source.dir, '--day')) return loadCsvDir(source.dir, interval);
  return loadTraceDir(source.dir);
}

const cache = new Map<string, Promise<Workload>>();

/** Loads a source once per process (a failed load is not kept, so it can be retried). */
export function loadTraceSourceCached(source: TraceSource): Promise<Workload> {
  const key = JSON.stringify(source);
  let w = cache.get(key);
  if (!w) {
    w = loadTraceSource(source);
    cache.set(key, w);
    w.catch(() => cache.delete(key));
  }
  return w;
}
