/**
 * mechanisms: what each of the newer mechanisms (issue 18) buys against what it replaces, each measured on the same
 * guest and link in the same run. dirty-limit against auto-converge and the seed's CAP (the dirty-limit experiment's
 * cells); KubeVirt's downtime ramp against Proxmox's double-downtime and plain pre-copy on a guest that stalls (the
 * convergence experiment's cells); multifd channels 1, 2, 4; post-copy with and without preemption under a bandwidth
 * limit; a live snapshot and its restore. A mechanism that is not on this build (its option unknown to the options
 * schema, its client call missing) is listed as such, not run.
 */
import { type MigrationOptions, migrationOptionsSchema } from '../migration/index.js';
import { barChart } from '../report/index.js';
import { find, guest, MiB, mib, ms, pct, sizes, statusOf } from './common.js';
import { convergence } from './convergence.js';
import { dirtyLimit } from './dirty-limit.js';
import { HAS_SNAPSHOT, measureSnapshot } from './mechanisms-snapshot.js';
import type { Cell, CellResult, Experiment, ExperimentConfig, Summary, SummaryTable } from './types.js';

/** QEMU's multifd-channels and postcopy-preempt, as the options schema names them where this build has them. */
const MULTIFD_KEY = 'multifdChannels';
const PREEMPT_KEY = 'postcopyPreempt';
const knows = (key: string) => Object.hasOwn(migrationOptionsSchema.shape, key);

/** Which mechanisms this build has (decided when it is compiled and loaded, never at run time by a flag). */
export const AVAILABLE = {
  'dirty-limit': true,
  'downtime-ramp': true,
  multifd: knows(MULTIFD_KEY),
  preempt: knows(PREEMPT_KEY),
  snapshot: HAS_SNAPSHOT,
} as const;
export type Section = keyof typeof AVAILABLE;
export const SECTIONS = Object.keys(AVAILABLE) as Section[];

const NOT_ON_BUILD: Record<Section, string> = {
  'dirty-limit': '',
  'downtime-ramp': '',
  multifd: `not on this build (no ${MULTIFD_KEY} migration option, --multifd-channels)`,
  preempt: `not on this build (no ${PREEMPT_KEY} migration option, --postcopy-preempt)`,
  snapshot: 'not on this build (the agent client has no snapshot/restore)',
};

/** Options with a key the compiler may not know on this build (checked against the schema first). */
function withOption(o: Partial<MigrationOptions>, key: string, value: unknown): Partial<MigrationOptions> {
  return { ...o, [key]: value } as Partial<MigrationOptions>;
}

const CHANNELS = [1, 2, 4] as const;
/** Post-copy's link: a limit the background push fills, so a fault queued behind it waits. */
const POSTCOPY_BANDWIDTH = 16 * MiB;

function tag(section: Section, cells: Cell[]): Cell[] {
  return cells.map((c) => ({
    ...c,
    id: `${section}/${c.id}`,
    labels: { section, ...c.labels },
    spec: { ...c.spec, oracle: true },
  }));
}

function plan(cfg: ExperimentConfig): Cell[] {
  const cells: Cell[] = [];
  // dirty-limit's own cells without plain pre-copy: the three remedies on kv-read and gap.
  cells.push(
    ...tag(
      'dirty-limit',
      dirtyLimit.plan(cfg).filter((c) => c.labels.variant !== 'precopy'),
    ),
  );
  // The convergence experiment's fastest writer (about 3× its link): the downtime policies only.
  const conv = convergence.plan(cfg);
  const top = Math.max(...conv.map((c) => Number(c.labels['pages/s'])));
  cells.push(
    ...tag(
      'downtime-ramp',
      conv.filter(
        (c) =>
          c.labels['pages/s'] === top &&
          ['precopy', 'double-downtime', 'downtime-ramp'].includes(String(c.labels.variant)),
      ),
    ),
  );
  const { warmupMs, ramBytes } = sizes(cfg);
  if (AVAILABLE.multifd) {
    // Most of RAM in use and a slow writer: round 1 is the copy whose throughput the channels should raise.
    const g = guest(cfg, 'gap', { writeRate: 500, workingSetFraction: 0.9 });
    for (const n of CHANNELS) {
      cells.push(
        ...tag('multifd', [
          {
            id: `${n}`,
            labels: { variant: `${n} channel${n > 1 ? 's' : ''}`, channels: n },
            spec: { guest: g, warmupMs, options: withOption({ maxBandwidth: 0 }, MULTIFD_KEY, n) },
          },
        ]),
      );
    }
  }
  {
    // Post-copy from the start at a bandwidth limit: every page the vCPU touches before the push reaches it faults.
    const g = guest(cfg, 'gap', { writeRate: 4000, workingSetFraction: 0.5 });
    const base: Partial<MigrationOptions> = { strategy: 'postcopy', maxBandwidth: POSTCOPY_BANDWIDTH };
    const variants: [string, Partial<MigrationOptions>][] = [['post-copy', base]];
    if (AVAILABLE.preempt) variants.push(['post-copy + preempt', withOption(base, PREEMPT_KEY, true)]);
    for (const [variant, options] of variants) {
      cells.push(
        ...tag('preempt', [{ id: variant, labels: { variant }, spec: { guest: g, warmupMs, options } }]),
      );
    }
  }
  if (AVAILABLE.snapshot) {
    const g = guest(cfg, 'gap', { writeRate: 5000, workingSetFraction: 0.5 });
    const baselineMs = cfg.mode === 'tiny' ? 300 : 1000;
    cells.push({
      id: 'snapshot/live',
      labels: { section: 'snapshot', variant: `live, ${mib(ramBytes)} MiB` },
      spec: { guest: g, warmupMs, options: {} },
      measure: () => measureSnapshot(g, warmupMs, baselineMs, 200),
    });
  }
  return cells;
}

const converged = (r: CellResult) => (r.measured.switchoverReason === 'converged' ? 'yes' : 'no');

function notOnBuild(title: string, slug: string, section: Section, columns: string[]): SummaryTable {
  return { title, slug, columns, rows: [[NOT_ON_BUILD[section], ...columns.slice(1).map(() => '')]] };
}

function inSection(results: readonly CellResult[], s: Section): CellResult[] {
  return results.filter((r) => r.labels.section === s);
}

function summarise(results: readonly CellResult[], _cfg: ExperimentConfig): Summary {
  const tables: SummaryTable[] = [];
  const findings: string[] = [];
  const charts: Summary['charts'][number][] = [];

  // dirty-limit vs auto-converge vs CAP.
  {
    const rows: (string | number)[][] = [];
    const chart: Record<string, string | number>[] = [];
    for (const r of inSection(results, 'dirty-limit')) {
      const m = r.measured;
      const reads = r.labels.workload === 'kv-read';
      rows.push([
        String(r.labels.workload),
        String(r.labels.variant),
        converged(r),
        m.rounds,
        ms(m.totalTimeMs),
        ms(m.downtimeMs),
        pct(m.guestSlowdown),
        reads ? pct(m.readSlowdown ?? 0) : '',
        reads ? ms(m.heldMsOtherVcpus ?? 0) : '',
        statusOf(r),
      ]);
      if (m.status === 'completed') {
        chart.push({
          workload: String(r.labels.workload),
          mechanism: String(r.labels.variant),
          'slowdown %': Math.round(100 * (reads ? (m.readSlowdown ?? 0) : m.guestSlowdown)),
        });
      }
    }
    tables.push({
      title: 'Dirty-rate limit vs auto-converge vs CAP (a guest that outruns an 8 MiB/s link)',
      slug: 'dirty-limit',
      columns: [
        'workload',
        'mechanism',
        'converged',
        'rounds',
        'total ms',
        'downtime ms',
        'guest slowdown',
        'reads slowdown',
        'reader held ms',
        'status',
      ],
      rows,
    });
    charts.push(
      barChart({
        title: 'Slowdown while migrating (kv-read: its reads; gap: its steps)',
        values: chart,
        category: 'workload',
        value: 'slowdown %',
        series: 'mechanism',
      }),
    );
    for (const w of ['kv-read', 'gap']) {
      const get = (v: string) => find(results, { section: 'dirty-limit', workload: w, variant: v });
      const dl = get('dirty-limit');
      if (!dl) continue;
      const slow = (r: CellResult) =>
        w === 'kv-read' ? (r.measured.readSlowdown ?? 0) : r.measured.guestSlowdown;
      const others: string[] = [];
      for (const v of ['auto-converge', 'cap']) {
        const r = get(v);
        if (r)
          others.push(`${v} ${converged(r) === 'yes' ? 'converged' : 'did not converge'}, ${pct(slow(r))}`);
      }
      // The reader's held time is the throttle's own share of the reads' slowdown; the rest is the host's.
      const held =
        w === 'kv-read' ? `, the reader vCPU held ${ms(dl.measured.heldMsOtherVcpus ?? 0)} ms by it` : '';
      findings.push(
        `dirty-limit on ${w}: ${converged(dl) === 'yes' ? 'converged' : 'did not converge'} in ` +
          `${dl.measured.rounds} rounds, ${ms(dl.measured.totalTimeMs)} ms, ${ms(dl.measured.downtimeMs)} ms ` +
          `downtime, ${w === 'kv-read' ? 'reads' : 'guest'} slowed ${pct(slow(dl))}${held} ` +
          `(${others.join('; ')}).`,
      );
    }
  }

  // Downtime ramp vs double-downtime vs plain pre-copy.
  {
    const rows: (string | number)[][] = [];
    const chart: Record<string, string | number>[] = [];
    for (const r of inSection(results, 'downtime-ramp')) {
      const m = r.measured;
      rows.push([
        String(r.labels.variant),
        Number(r.labels['pages/s']),
        m.switchoverReason || statusOf(r),
        m.rounds,
        ms(m.totalTimeMs),
        ms(m.downtimeMs),
        ms(m.downtimeLimitEndMs ?? 0),
        mib(m.bytes),
        statusOf(r),
      ]);
      if (m.status === 'completed') {
        chart.push({ policy: String(r.labels.variant), 'downtime ms': ms(m.downtimeMs) });
      }
    }
    tables.push({
      title: 'Downtime ramp vs double-downtime vs plain pre-copy (a guest that stalls)',
      slug: 'downtime-ramp',
      columns: [
        'policy',
        'pages/s',
        'switch-over',
        'rounds',
        'total ms',
        'downtime ms',
        'final limit ms',
        'MiB sent',
        'status',
      ],
      rows,
    });
    charts.push(
      barChart({
        title: 'Downtime per stall policy',
        values: chart,
        category: 'policy',
        value: 'downtime ms',
      }),
    );
    const parts = inSection(results, 'downtime-ramp').map(
      (r) =>
        `${r.labels.variant}: ${r.measured.switchoverReason || statusOf(r)} after ${r.measured.rounds} rounds, ` +
        `${ms(r.measured.totalTimeMs)} ms, ${ms(r.measured.downtimeMs)} ms downtime at a limit of ` +
        `${ms(r.measured.downtimeLimitEndMs ?? 0)} ms`,
    );
    if (parts.length > 0) findings.push(`On a stalling guest, ${parts.join('; ')}.`);
  }

  // multifd channels.
  {
    const columns = [
      'channels',
      'round-1 MiB/s',
      'total ms',
      'downtime ms',
      'source CPU ms/MiB',
      'destination CPU ms/MiB',
      'status',
    ];
    if (!AVAILABLE.multifd) {
      tables.push(notOnBuild('multifd channels', 'multifd', 'multifd', columns));
      findings.push(`multifd: ${NOT_ON_BUILD.multifd}.`);
    } else {
      const rs = inSection(results, 'multifd');
      const rows = rs.map((r) => {
        const m = r.measured;
        const sent = m.bytes / MiB;
        return [
          Number(r.labels.channels),
          Math.round(m.round1MiBps),
          ms(m.totalTimeMs),
          ms(m.downtimeMs),
          sent > 0 ? Number((m.sourceCpuMs / sent).toFixed(2)) : '',
          sent > 0 ? Number(((m.destCpuMs ?? 0) / sent).toFixed(2)) : '',
          statusOf(r),
        ];
      });
      tables.push({ title: 'multifd channels (no bandwidth limit)', slug: 'multifd', columns, rows });
      charts.push(
        barChart({
          title: 'Round-1 throughput per number of channels',
          values: rs
            .filter((r) => r.measured.status === 'completed')
            .map((r) => ({
              channels: String(r.labels.channels),
              'MiB/s': Math.round(r.measured.round1MiBps),
            })),
          category: 'channels',
          value: 'MiB/s',
        }),
      );
      const one = rs.find((r) => r.labels.channels === 1);
      const rest = rs.filter((r) => r.labels.channels !== 1);
      const cpu = (r: CellResult) =>
        r.measured.bytes > 0
          ? (r.measured.sourceCpuMs + (r.measured.destCpuMs ?? 0)) / (r.measured.bytes / MiB)
          : 0;
      if (one && one.measured.round1MiBps > 0) {
        findings.push(
          `multifd: round 1 at ${Math.round(one.measured.round1MiBps)} MiB/s on one connection ` +
            `(${cpu(one).toFixed(1)} CPU ms per MiB, both agents); ` +
            rest
              .map(
                (r) =>
                  `${r.labels.channels} channels ${Math.round(r.measured.round1MiBps)} MiB/s ` +
                  `(×${(r.measured.round1MiBps / one.measured.round1MiBps).toFixed(2)}, ` +
                  `${cpu(r).toFixed(1)} CPU ms per MiB)`,
              )
              .join(', ') +
            '. Loopback carries over 1 GiB/s: what bounds the channels is CPU — every channel adds an encoding ' +
            'thread and an applying thread, and on a 2-core machine shared with the guest they take turns on the ' +
            'same cores.',
        );
      }
    }
  }

  // Post-copy with and without preempt.
  {
    const columns = [
      'variant',
      'faults',
      'fault p50 ms',
      'fault p99 ms',
      'fault max ms',
      'total ms',
      'downtime ms',
      'status',
    ];
    const rs = inSection(results, 'preempt');
    const rows: (string | number)[][] = rs.map((r) => {
      const m = r.measured;
      return [
        String(r.labels.variant),
        m.postcopyFaults,
        ms(m.faultP50Ms),
        ms(m.faultP99Ms),
        ms(m.faultMaxMs),
        ms(m.totalTimeMs),
        ms(m.downtimeMs),
        statusOf(r),
      ];
    });
    if (!AVAILABLE.preempt) rows.push(['post-copy + preempt', NOT_ON_BUILD.preempt, '', '', '', '', '', '']);
    tables.push({
      title: `Post-copy fault latency with and without preempt (${POSTCOPY_BANDWIDTH / MiB} MiB/s link)`,
      slug: 'preempt',
      columns,
      rows,
    });
    charts.push(
      barChart({
        title: 'Post-copy fault latency',
        values: rs
          .filter((r) => r.measured.status === 'completed')
          .flatMap((r) => [
            { variant: String(r.labels.variant), percentile: 'p50', ms: ms(r.measured.faultP50Ms) },
            { variant: String(r.labels.variant), percentile: 'p99', ms: ms(r.measured.faultP99Ms) },
          ]),
        category: 'variant',
        value: 'ms',
        series: 'percentile',
        valueTitle: 'fault latency ms',
      }),
    );
    const plain = rs.find((r) => r.labels.variant === 'post-copy');
    const pre = rs.find((r) => r.labels.variant === 'post-copy + preempt');
    const latency = (r: CellResult) =>
      r.measured.status === 'completed'
        ? `${r.measured.postcopyFaults} remote faults, p50 ${ms(r.measured.faultP50Ms)} ms, ` +
          `p99 ${ms(r.measured.faultP99Ms)} ms`
        : statusOf(r);
    if (plain) {
      findings.push(
        `post-copy: ${latency(plain)}; ` +
          (pre ? `with preempt: ${latency(pre)}.` : `preempt ${NOT_ON_BUILD.preempt}.`),
      );
    }
  }

  // Snapshot and restore.
  {
    const columns = [
      'snapshot',
      'snapshot ms',
      'pause ms',
      'guest slowdown',
      'file MiB',
      'restore ms',
      'status',
    ];
    if (!AVAILABLE.snapshot) {
      tables.push(notOnBuild('Live snapshot and restore', 'snapshot', 'snapshot', columns));
      findings.push(`snapshot: ${NOT_ON_BUILD.snapshot}.`);
    } else {
      const rs = inSection(results, 'snapshot');
      tables.push({
        title: 'Live snapshot to a file and restore on another agent',
        slug: 'snapshot',
        columns,
        rows: rs.map((r) => {
          const m = r.measured;
          return [
            String(r.labels.variant),
            ms(m.snapshotMs ?? 0),
            ms(m.snapshotPauseMs ?? 0),
            pct(m.guestSlowdown),
            mib(m.snapshotFileBytes ?? 0),
            ms(m.restoreMs ?? 0),
            statusOf(r),
          ];
        }),
      });
      for (const r of rs) {
        findings.push(
          `snapshot (${r.labels.variant}): written in ${ms(r.measured.snapshotMs ?? 0)} ms with a ` +
            `${ms(r.measured.snapshotPauseMs ?? 0)} ms pause, guest slowed ${pct(r.measured.guestSlowdown)} ` +
            `meanwhile, ${mib(r.measured.snapshotFileBytes ?? 0)} MiB file, restored to its first instruction in ` +
            `${ms(r.measured.restoreMs ?? 0)} ms.`,
        );
      }
    }
  }

  const loads = results.map((r) => r.measured.loadAvg1 ?? 0).filter((x) => x > 0);
  if (loads.length > 0) {
    findings.push(
      `Load average (1 min) while the cells ran: ${Math.min(...loads).toFixed(1)} to ` +
        `${Math.max(...loads).toFixed(1)} on this machine: time and CPU figures carry it.`,
    );
  }
  const unverified = results.filter((r) => r.measured.status === 'completed' && !r.measured.verified);
  if (unverified.length > 0) {
    findings.push(`UNVERIFIED guests: ${unverified.map((r) => r.id).join(', ')}.`);
  }
  return { tables, charts, findings };
}

export const mechanisms: Experiment = {
  name: 'mechanisms',
  title: 'Newer mechanisms against what they replace',
  description:
    'Each mechanism against what it replaces, on the same guest and link in the same run: dirty-limit vs ' +
    "auto-converge vs the seed's CAP (kv-read and gap outrunning an 8 MiB/s link); KubeVirt's downtime ramp vs " +
    "Proxmox's double-downtime vs plain pre-copy (gap at about 3× its link); multifd channels 1, 2, 4 (round-1 " +
    'throughput, CPU per MiB); post-copy fault latency with and without preempt under a bandwidth limit; a live ' +
    'snapshot to a file and its restore. The determinism oracle checks every migrated or restored guest. ' +
    `On this build: ${SECTIONS.map((s) => `${s} ${AVAILABLE[s] ? 'yes' : 'no'}`).join(', ')}.`,
  plan,
  summarise,
};
