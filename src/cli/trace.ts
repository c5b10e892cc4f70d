/**
 * `livemig trace record` and `livemig trace info`: record how a real process's memory changes into a trace file
 * (replayed by the guest workload `trace:FILE`), and describe a trace. See docs/traces.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import Table from 'cli-table3';
import { type Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import {
  Recorder,
  type SnapshotInfo,
  TRACE_COMPRESSIONS,
  type TraceCompression,
  type TraceMethod,
  TraceReader,
  traceStats,
} from '../trace/index.js';
import { formatBytes, formatMs } from '../units.js';
import { durationFlag, intFlag, LIMITS, numberFlag } from './values.js';

interface RecordFlags {
  pid?: string;
  interval: string;
  duration: string;
  delay: string;
  out: string;
  method: 'auto' | TraceMethod;
  compression: TraceCompression;
  maxPages: string;
  program?: string;
  notes?: string;
  freeze?: boolean;
  json?: boolean;
}

/** Stops the process (SIGSTOP) and waits until the kernel reports it stopped; returns when it began. */
async function freeze(pid: number): Promise<number> {
  const t = performance.now();
  try {
    process.kill(pid, 'SIGSTOP');
  } catch {
    return t; // gone: the snapshot will say so
  }
  for (let i = 0; i < 200; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'T' || state === 't' || state === 'Z' || state === 'X') break;
    } catch {
      break;
    }
    await sleep(1);
  }
  return t;
}

function thaw(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // gone
  }
}

/** A bare number of seconds, or a duration with a unit (2s, 500ms, 1m). */
function seconds(text: string, flag: string): number {
  return /^\s*\d+(\.\d+)?\s*$/.test(text)
    ? numberFlag(text, flag, 0, LIMITS.duration / 1000) * 1000
    : durationFlag(text, flag, 0, LIMITS.duration);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function uname(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return undefined;
  }
}

function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((s) => s !== '');
  } catch {
    return [];
  }
}

export function registerTrace(program: Command): void {
  const trace = program
    .command('trace')
    .description("Record a real program's memory changes into a trace; replay it with --workload trace:FILE");

  const rec = trace
    .command('record')
    .description(
      "Record how a process's writable memory changes, interval by interval, into a compressed trace file " +
        '(pages dirtied per interval as XOR deltas). Reads /proc/PID/maps, pagemap and mem: run as root or as ' +
        "the process's user.",
    )
    .argument('[command...]', 'a command to start and record (after --), instead of --pid')
    .option('--pid <pid>', 'record this running process')
    .option('--interval <ms>', 'time between snapshots', '100ms')
    .option(
      '--duration <s>',
      'stop after this long (bare number: seconds); a started command is stopped then',
      '10',
    )
    .option('--delay <duration>', 'wait this long before the first snapshot (let a program warm up)', '0ms')
    .requiredOption('--out <file>', 'trace file to write')
    .addOption(
      new Option('--method <m>', 'how to find dirtied pages')
        .choices(['auto', 'soft-dirty', 'page-compare'])
        .default('auto'),
    )
    .addOption(
      new Option('--compression <c>', 'per-chunk compressor')
        .choices([...TRACE_COMPRESSIONS])
        .default('brotli'),
    )
    .option('--max-pages <n>', 'give up if the process holds more non-zero pages than this', '262144')
    .option('--program <name>', "the program's name in the trace (default: the command's)")
    .option('--notes <text>', 'what the program was doing (stored in the trace)')
    .option(
      '--freeze',
      'stop the process (SIGSTOP) while each snapshot is taken: consistent snapshots, and timestamps in the ' +
        "program's own running time, so a slow snapshot does not stretch the recorded intervals",
    )
    .option('--json', 'print a JSON summary on stdout');
  rec.addHelpText(
    'after',
    '\nExamples:\n' +
      '  livemig trace record --interval 50 --duration 5 --out traces/sqlite.lmtrace -- sqlite3 /tmp/db ".read bench.sql"\n' +
      '  livemig trace record --pid $(pidof redis-server) --interval 100 --duration 10 --out redis.lmtrace\n' +
      '  livemig trace info redis.lmtrace\n' +
      '  livemig run --workload trace:redis.lmtrace --oracle\n',
  );
  rec.action(async (command: string[], f: RecordFlags) => {
    const intervalMs = durationFlag(f.interval, '--interval', 1, 3_600_000);
    const durationMs = seconds(f.duration, '--duration');
    const delayMs = durationFlag(f.delay, '--delay', 0, LIMITS.duration);
    const maxPages = intFlag(f.maxPages, '--max-pages', 1, 2 ** 31);
    if ((f.pid === undefined) === (command.length === 0)) {
      throw new UsageError('say what to record: --pid PID, or -- COMMAND ARGS (one of them)', '--pid');
    }
    let child: ChildProcess | null = null;
    let pid: number;
    let argv: string[];
    if (f.pid !== undefined) {
      pid = intFlag(f.pid, '--pid', 1, 2 ** 22);
      argv = cmdlineOf(pid);
    } else {
      argv = command;
      // The program's output goes to stderr: stdout is ours (--json).
      child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', process.stderr, process.stderr] });
      await new Promise<void>((resolve, reject) => {
        child!.once('spawn', () => resolve());
        child!.once('error', (err) =>
          reject(
            new UsageError(
              `cannot start ${command[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
            ),
          ),
        );
      });
      pid = child.pid!;
    }
    let exited = false;
    child?.once('exit', () => {
      exited = true;
    });
    const stopChild = () => {
      if (child && !exited) child.kill('SIGTERM');
    };
    try {
      if (delayMs > 0) await sleep(delayMs);
      const recorder = new Recorder({
        pid,
        intervalMs,
        method: f.method,
        compression: f.compression,
        out: f.out,
        maxPages,
        meta: {
          program: f.program ?? basename(argv[0] ?? `pid-${pid}`),
          command: argv,
          startedAt: new Date().toISOString(),
          ...(f.freeze ? { frozen: true } : {}),
          ...(uname() ? { kernel: uname() } : {}),
          ...(f.notes ? { notes: f.notes } : {}),
        },
      });
      process.stderr.write(
        `recording pid ${pid} (${argv.join(' ') || '?'}) every ${formatMs(intervalMs)} for ${formatMs(durationMs)}; ` +
          `method ${recorder.method} (${recorder.methodReason})\n`,
      );
      const start = performance.now();
      let last: SnapshotInfo | null = null;
      let late = 0;
      let slowest = 0;
      let error: unknown = null;
      let frozenMs = 0;
      try {
        for (let k = 0; ; k++) {
          // With --freeze, time is the program's running time: the snapshots' own time is taken out.
          const due = start + frozenMs + k * intervalMs;
          if (k > 0) {
            const wait = due - performance.now();
            if (wait < 0) late++;
            await sleep(wait);
          }
          const at = performance.now() - start - frozenMs;
          const stopped = f.freeze ? await freeze(pid) : 0;
          let s: SnapshotInfo | null;
          try {
            s = recorder.snapshot(at);
          } finally {
            if (f.freeze) {
              thaw(pid);
              frozenMs += performance.now() - stopped;
            }
          }
          if (s === null) break; // the process has exited
          last = s;
          slowest = Math.max(slowest, s.tookMs);
          process.stderr.write(
            `\r  ${recorder.records} snapshots, ${s.pagesInUse} pages in use, ${s.dirtyPages} dirtied in the last ` +
              `interval, ${formatBytes(recorder.bytes)} written   `,
          );
          if (performance.now() - start - frozenMs + intervalMs > durationMs) break;
        }
      } catch (err) {
        error = err; // keep what was recorded: the trace up to the last full snapshot is valid
      }
      process.stderr.write('\n');
      if (recorder.records === 0) {
        recorder.abort();
        throw error ?? new UsageError(`process ${pid} exited before the first snapshot`);
      }
      const summary = recorder.finish();
      const elapsedMs = performance.now() - start;
      const out = {
        file: f.out,
        pid,
        command: argv,
        method: summary.method,
        methodReason: summary.methodReason,
        intervalMs,
        records: summary.records,
        pageCount: summary.pageCount,
        bytes: summary.bytes,
        elapsedMs: Math.round(elapsedMs),
        lateIntervals: late,
        frozen: f.freeze === true,
        frozenMs: Math.round(frozenMs),
        slowestSnapshotMs: Math.round(slowest * 10) / 10,
        lastPagesInUse: last?.pagesInUse ?? 0,
        ...(error ? { stoppedBy: error instanceof Error ? error.message : String(error) } : {}),
      };
      if (f.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      else {
        process.stdout.write(
          `wrote ${f.out}: ${summary.records} records, ${summary.pageCount} pages, ${formatBytes(summary.bytes)}, ` +
            `method ${summary.method}${late ? `, ${late} intervals late (snapshots slower than the interval)` : ''}\n` +
            (error ? `stopped early: ${out.stoppedBy}\n` : '') +
            `see it with: livemig trace info ${f.out}\n`,
        );
      }
    } finally {
      stopChild();
    }
  });

  trace
    .command('info')
    .description(
      'Describe a trace: header, intervals, pages, dirty rate, hot set and how well its pages compress',
    )
    .argument('<file>', 'a trace file')
    .option('--json', 'print JSON')
    .action((file: string, f: { json?: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const s = traceStats(TraceReader.open(bytes));
      if (f.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const h = s.header;
      const t = new Table();
      const rows: [string, string][] = [
        ['program', `${h.meta.program}  (${h.meta.command.join(' ')})`],
        ['recorded', `${h.meta.startedAt ?? '?'}, kernel ${h.meta.kernel ?? '?'}`],
        ['method', `${h.method}${h.meta.methodReason ? ` — ${String(h.meta.methodReason)}` : ''}`],
        [
          'format',
          `version ${h.version}, ${h.pageSize}-byte pages, ${h.compression}, ${h.chunkPages} pages per chunk`,
        ],
        ['interval', `${formatMs(h.intervalMs)}; ${s.records} records over ${formatMs(s.durationMs)}`],
        [
          'pages',
          `${h.pageCount} (${formatBytes(h.pageCount * h.pageSize)}); snapshot ${s.snapshotPages} non-zero`,
        ],
        [
          'dirtied',
          `${s.dirtyPages} page writes, ${s.distinctDirtyPages} distinct pages; ${s.dirtyPagesPerSecond.toFixed(0)} pages/s, ` +
            `median ${s.medianDirtyPerInterval} per interval`,
        ],
        [
          'hot set',
          `${(s.hottestTenthShare * 100).toFixed(0)}% of page writes hit the hottest 10% of dirtied pages`,
        ],
        ['changed bytes', `median ${s.medianChangedBytes} bytes differ in a dirtied page`],
        [
          'compression',
          `file ${formatBytes(s.fileBytes)} (${s.fileRatio.toFixed(1)}x of raw); snapshot deflate ` +
            `${s.snapshotDeflateRatio.toFixed(2)}x; dirtied pages XBZRLE ${s.xbzrleRatio.toFixed(1)}x vs raw`,
        ],
      ];
      if (h.meta.notes) rows.push(['notes', String(h.meta.notes)]);
      for (const [k, v] of rows) t.push({ [k]: v });
      process.stdout.write(`${t.toString()}\n`);
    });
}
