/**
 * engines: livemig's downtime against QEMU's, per config, from the same run (issue 17's target: livemig ≤ QEMU in
 * every config). The ratio is livemig ÷ QEMU: below 1, livemig's guest was paused for less time.
 */
import type { MigrationReport } from '../migration/index.js';
import type { EngineRun } from './engines.js';

export interface DowntimeRatio {
  config: string;
  qemuMs: number;
  livemigMs: number;
  /** livemig ÷ QEMU; null when either run failed or QEMU reported 0 ms (QEMU rounds its downtime to whole ms). */
  ratio: number | null;
  /** livemig's downtime was at or below QEMU's (false when either failed). */
  atOrBelow: boolean;
  /**
   * livemig's pause → its switch-over's last byte written (report.switchover), the span QEMU's own downtime
   * figure covers: QEMU stops its clock once its last byte is flushed, before the destination has loaded the state
   * and started the guest; livemig's `downtimeMs` runs on until RESUMED is read. null without the breakdown.
   */
  livemigWrittenMs: number | null;
  /**
   * QEMU's post-copy switch-over took under a millisecond, and its own figure is not that switch-over: see
   * {@link qemuPostcopyUnderOneMs}. `qemuMs` is then 0 and the verdict is not "at or below".
   */
  qemuUnderOneMs?: true;
  /**
   * QEMU's guest blackout: its STOP event on the source → its RESUME event on the destination (QMP's microsecond
   * stamps, src/qemu/blackout.ts), the same span as livemig's `livemigMs` (pause → RESUMED read). null when the
   * bridge could not read it (an older run, or a failed migration).
   */
  qemuBlackoutMs: number | null;
  /** livemig ÷ QEMU's blackout, the ratio on one span; null without the blackout. */
  blackoutRatio: number | null;
  /** livemig's downtime was at or below QEMU's blackout (false without it). */
  atOrBelowBlackout: boolean;
}

/**
 * QEMU keeps post-copy's downtime, taken on its millisecond clock in `postcopy_start`, only when it is not zero:
 * `migration_downtime_end` treats 0 as "not set yet" ("If downtime already set, should mean that postcopy already
 * set it", `migration/migration.c`), so a switch-over within one clock millisecond is overwritten at completion by
 * the time from the switch to the end, the whole post-copy phase. Measured in `experiment engines`' post-copy cell:
 * 3333 and 3342 ms of "downtime" in migrations of 3.43 s. A post-copy downtime above half the total time is that
 * overwrite (the guest cannot have been paused through a push it ran through): the real switch-over was under 1 ms.
 */
export function qemuPostcopyUnderOneMs(q: EngineRun): boolean {
  const m = q.measured;
  return q.config.strategy === 'postcopy' && m.totalTimeMs > 0 && m.downtimeMs > m.totalTimeMs / 2;
}

/** Pause → the switch-over's last write, from the report's steps (null without them). */
export function writtenMs(r: MigrationReport): number | null {
  const s = r.switchover;
  if (!s) return null;
  return s.pauseMs + s.stateMs + s.lastPagesMs + s.digestMs + s.sendMs;
}

/** One entry per config that both engines ran, in the order of the runs. */
export function downtimeRatios(runs: readonly EngineRun[]): DowntimeRatio[] {
  const out: DowntimeRatio[] = [];
  for (const q of runs) {
    if (q.engine !== 'qemu') continue;
    const l = runs.find((r) => r.engine === 'livemig' && r.config.id === q.config.id);
    if (!l) continue;
    const ok = q.measured.status === 'completed' && l.measured.status === 'completed';
    const underOneMs = qemuPostcopyUnderOneMs(q);
    const qemuMs = underOneMs ? 0 : q.measured.downtimeMs;
    const livemigMs = l.measured.downtimeMs;
    const blackout = q.report?.qemu?.blackoutMs ?? null;
    const qemuBlackoutMs = ok && blackout !== null && blackout > 0 ? blackout : null;
    out.push({
      config: q.config.id,
      qemuMs,
      livemigMs,
      ratio: ok && qemuMs > 0 ? Math.round((livemigMs / qemuMs) * 100) / 100 : null,
      // Under 1 ms is not a figure to be at or below.
      atOrBelow: ok && !underOneMs && livemigMs <= qemuMs,
      livemigWrittenMs: l.report ? writtenMs(l.report) : null,
      ...(underOneMs ? { qemuUnderOneMs: true as const } : {}),
      qemuBlackoutMs,
      blackoutRatio: qemuBlackoutMs === null ? null : Math.round((livemigMs / qemuBlackoutMs) * 100) / 100,
      atOrBelowBlackout: qemuBlackoutMs !== null && livemigMs <= qemuBlackoutMs,
    });
  }
  return out;
}

/** The table cell for a run: the config's ratio on livemig's row, a dash on QEMU's. */
export function ratioCell(ratios: readonly DowntimeRatio[], run: EngineRun): string {
  if (run.engine !== 'livemig') return '–';
  const r = ratios.find((x) => x.config === run.config.id);
  return r?.ratio == null ? '–' : r.ratio.toFixed(2);
}

/** One line per config for the terminal. */
export function downtimeLines(ratios: readonly DowntimeRatio[]): string[] {
  return ratios.map(
    (r) =>
      `${r.config}: livemig ${r.livemigMs.toFixed(1)} ms vs QEMU ` +
      (r.qemuUnderOneMs
        ? 'under 1 ms (its own figure covered the post-copy phase: a switch-over of 0 ms on its clock reads as unset), ratio '
        : `${r.qemuMs.toFixed(1)} ms, ratio `) +
      `${r.ratio === null ? '–' : r.ratio.toFixed(2)} (${r.atOrBelow ? 'at or below QEMU' : 'ABOVE QEMU'})` +
      (r.livemigWrittenMs === null
        ? ''
        : `; pause → last byte written ${r.livemigWrittenMs.toFixed(1)} ms (the span QEMU's figure covers)`) +
      (r.qemuBlackoutMs === null
        ? ''
        : `; on one span, guest stopped → running on the destination: livemig ${r.livemigMs.toFixed(2)} ms vs QEMU ` +
          `${r.qemuBlackoutMs.toFixed(2)} ms (STOP → RESUME events), ratio ${r.blackoutRatio!.toFixed(2)} ` +
          `(${r.atOrBelowBlackout ? 'at or below QEMU' : 'ABOVE QEMU'})`),
  );
}
