import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../guest/index.js';
import { DEFAULT_OPTIONS } from '../migration/index.js';
import { emptyQemuReport } from '../qemu/index.js';
import {
  type EngineConfig,
  type EngineRun,
  engineOptions,
  enginesPlan,
  explain,
  livemigGuest,
  livemigOptions,
  modelledEnergyJ,
  sideBySide,
  stopAndCopyBytes,
} from './engines.js';
import { downtimeLines, downtimeRatios, writtenMs } from './engines-downtime.js';
import { flatten } from './measure.js';

const MiB = 2 ** 20;

function run(
  engine: 'qemu' | 'livemig',
  c: EngineConfig,
  f: { totalMs: number; downtimeMs: number; bytes: number; rounds: number; stopMiB: number; cpuMs: number },
): EngineRun {
  const r = emptyQemuReport({ options: DEFAULT_OPTIONS, source: 's', destination: 'd' });
  r.status = 'completed';
  r.verified = engine === 'livemig';
  r.totalTimeMs = f.totalMs;
  r.downtimeMs = f.downtimeMs;
  r.transferredBytes = f.bytes;
  r.rounds = f.rounds;
  r.perRound = [
    {
      round: 1,
      pagesSent: 1,
      bytes: f.bytes - f.stopMiB * MiB,
      dirtyPages: 1,
      durationMs: 1,
      throughputMbps: 1,
      expectedDowntimeMs: 1,
      throttle: 0,
      heldPages: 0,
    },
  ];
  const measured = flatten(r, {
    sourceCpuMs: f.cpuMs * 2,
    sourceMainCpuMs: f.cpuMs,
    destMainCpuMs: 0,
    wallMs: 0,
    guestSlowdownEndToEnd: 0,
  });
  return {
    engine,
    config: c,
    measured,
    healthy: engine === 'qemu' ? true : null,
    dirtyRatePagesPerSec: 2000,
    migrationCpuMs: f.cpuMs,
    guestCpuMs: f.cpuMs,
    energyJ: 1,
    stopAndCopyBytes: stopAndCopyBytes(r),
  };
}

describe('engines experiment', () => {
  it('quick runs one or two configs of 128–256 MiB; tiny one', () => {
    const quick = enginesPlan({ quick: true });
    expect(quick.length).toBeGreaterThanOrEqual(1);
    expect(quick.length).toBeLessThanOrEqual(2);
    for (const c of quick) expect(c.ramMiB).toBeGreaterThanOrEqual(128);
    for (const c of quick) expect(c.ramMiB).toBeLessThanOrEqual(256);
    expect(enginesPlan({ tiny: true })).toHaveLength(1);
    expect(new Set(enginesPlan().map((c) => c.id)).size).toBe(enginesPlan().length);
  });

  it("livemig's guest matches the QEMU guest program: region, rate, bytes per write, uniform, no whole-page rewrites", () => {
    for (const c of enginesPlan()) {
      const g = resolveConfig(livemigGuest(c));
      expect(g.ramBytes).toBe(c.ramMiB * MiB);
      expect(g.vcpus).toBe(1);
      const p = g.workload.params;
      expect(p.workingSetBytes).toBe(c.dirtyMiB * MiB);
      expect(p.writeRate).toBe(c.rate);
      expect(p.bytesPerWrite).toBe(c.bytesPerWrite);
      expect(p.wholePageFraction).toBe(0);
      expect(p.distribution).toBe('uniform');
      const o = engineOptions(c);
      expect(o).toMatchObject({
        strategy: c.strategy ?? 'precopy',
        maxBandwidth: c.bandwidth,
        downtimeLimitMs: c.downtimeLimitMs,
        xbzrle: c.xbzrle,
      });
      if (c.cacheSizing === 'dynamic')
        expect(o).toMatchObject({ cacheSizing: 'dynamic', xbzrleCacheMaxBytes: c.xbzrleCacheBytes });
      else if (c.xbzrle) expect(o.xbzrleCacheBytes).toBe(c.xbzrleCacheBytes);
    }
  });

  it('explains who is better with the numbers, and files what QEMU does better', () => {
    const c = enginesPlan({ quick: true })[0]!;
    const q = run('qemu', c, {
      totalMs: 4300,
      downtimeMs: 11,
      bytes: 148 * MiB,
      rounds: 4,
      stopMiB: 8,
      cpuMs: 200,
    });
    const l = run('livemig', c, {
      totalMs: 4100,
      downtimeMs: 176,
      bytes: 81 * MiB,
      rounds: 2,
      stopMiB: 5,
      cpuMs: 430,
    });
    const { findings, qemuBetter } = explain([q, l]);
    expect(qemuBetter.some((x) => x.includes('downtime is shorter (11.0 vs 176.0 ms)'))).toBe(true);
    expect(qemuBetter.some((x) => x.includes('less CPU per MiB'))).toBe(true);
    expect(qemuBetter.some((x) => x.includes('fewer bytes'))).toBe(false);
    expect(findings.some((x) => x.includes('stop-and-copy of 8.0 vs 5.0 MiB'))).toBe(true);
    expect(findings.some((x) => x.startsWith('Where livemig is better') && x.includes('67.0 MiB less'))).toBe(
      true,
    );
    // Differences within noise (10 % and a floor) are not called better for either.
    const q2 = run('qemu', c, {
      totalMs: 4000,
      downtimeMs: 41,
      bytes: 80 * MiB,
      rounds: 2,
      stopMiB: 1,
      cpuMs: 400,
    });
    const l2 = run('livemig', c, {
      totalMs: 4100,
      downtimeMs: 41.1,
      bytes: 81 * MiB,
      rounds: 2,
      stopMiB: 1,
      cpuMs: 410,
    });
    const e2 = explain([q2, l2]);
    expect(e2.qemuBetter).toEqual([]);
    expect(e2.findings.some((x) => x.startsWith('Where'))).toBe(false);
    const table = sideBySide([q, l]);
    expect(table.rows).toHaveLength(2);
    expect(table.rows[0]?.[1]).toBe('qemu');
    expect(table.rows[0]?.[2]).toBe('ok (guest checked)');
    expect(table.rows[1]?.[2]).toBe('ok (digest)');
    // A failed run is reported, not compared.
    const failed = { ...l, measured: { ...l.measured, status: 'failed', errorCode: 'TIMEOUT' } };
    expect(explain([q, failed]).findings[0]).toMatch(/not compared/);
  });

  it('post-copy configs are explained by page requests and switch-over, not by a stop-and-copy', () => {
    const c = enginesPlan().find((x) => x.strategy === 'postcopy')!;
    const q = run('qemu', c, {
      totalMs: 3400,
      downtimeMs: 1,
      bytes: 120 * MiB,
      rounds: 1,
      stopMiB: 117,
      cpuMs: 2100,
    });
    const l = run('livemig', c, {
      totalMs: 5600,
      downtimeMs: 189,
      bytes: 65 * MiB,
      rounds: 0,
      stopMiB: 65,
      cpuMs: 670,
    });
    const { findings, qemuBetter } = explain([q, l]);
    expect(findings.some((x) => x.includes('asked for'))).toBe(true);
    expect(findings.some((x) => x.includes('stop-and-copy of'))).toBe(false);
    expect(qemuBetter.some((x) => x.includes('post-copy downtime is shorter (1.0 vs 189.0 ms)'))).toBe(true);
    expect(
      findings.some((x) => x.startsWith('Where livemig is better') && x.includes('less CPU per MiB')),
    ).toBe(true);
  });

  it('the downtime ratio livemig ÷ QEMU per config: in the table (livemig row), the result and the lines', () => {
    const [a, b] = enginesPlan({ quick: true }) as [EngineConfig, EngineConfig];
    const base = { totalMs: 4000, bytes: 80 * MiB, rounds: 2, stopMiB: 1, cpuMs: 300 };
    const runs = [
      run('qemu', a, { ...base, downtimeMs: 10 }),
      run('livemig', a, { ...base, downtimeMs: 4.5 }),
      run('qemu', b, { ...base, downtimeMs: 8 }),
      run('livemig', b, { ...base, downtimeMs: 12 }),
    ];
    expect(downtimeRatios(runs)).toEqual([
      {
        config: a.id,
        qemuMs: 10,
        livemigMs: 4.5,
        ratio: 0.45,
        atOrBelow: true,
        livemigWrittenMs: null,
        qemuBlackoutMs: null,
        blackoutRatio: null,
        atOrBelowBlackout: false,
      },
      {
        config: b.id,
        qemuMs: 8,
        livemigMs: 12,
        ratio: 1.5,
        atOrBelow: false,
        livemigWrittenMs: null,
        qemuBlackoutMs: null,
        blackoutRatio: null,
        atOrBelowBlackout: false,
      },
    ]);
    const table = sideBySide(runs);
    const col = table.columns.indexOf('downtime livemig/QEMU');
    expect(col).toBe(table.columns.indexOf('downtime ms') + 1);
    expect(table.rows.map((r) => r[col])).toEqual(['–', '0.45', '–', '1.50']);
    expect(downtimeLines(downtimeRatios(runs))[1]).toMatch(
      /12\.0 ms vs QEMU 8\.0 ms, ratio 1\.50 \(ABOVE QEMU\)/,
    );
    // A failed run has no ratio and does not count as at or below.
    const failed = { ...runs[1]!, measured: { ...runs[1]!.measured, status: 'failed' } };
    expect(downtimeRatios([runs[0]!, failed])).toEqual([
      {
        config: a.id,
        qemuMs: 10,
        livemigMs: 4.5,
        ratio: null,
        atOrBelow: false,
        livemigWrittenMs: null,
        qemuBlackoutMs: null,
        blackoutRatio: null,
        atOrBelowBlackout: false,
      },
    ]);
  });

  it("QEMU's blackout (STOP → RESUME events), livemig's span: its own ratio and verdict beside QEMU's figure", () => {
    const [a] = enginesPlan({ quick: true }) as [EngineConfig];
    const base = { totalMs: 4000, bytes: 80 * MiB, rounds: 2, stopMiB: 1, cpuMs: 300 };
    const q = run('qemu', a, { ...base, downtimeMs: 2 });
    const rep = emptyQemuReport({ options: DEFAULT_OPTIONS, source: 's', destination: 'd' });
    const { samples: _samples, ...extras } = rep.qemu;
    q.report = { ...rep, qemu: { ...extras, blackoutMs: 3.2 } };
    const runs = [q, run('livemig', a, { ...base, downtimeMs: 2.4 })];
    expect(downtimeRatios(runs)[0]).toMatchObject({
      ratio: 1.2,
      atOrBelow: false,
      qemuBlackoutMs: 3.2,
      blackoutRatio: 0.75,
      atOrBelowBlackout: true,
    });
    expect(downtimeLines(downtimeRatios(runs))[0]).toMatch(
      /ratio 1\.20 \(ABOVE QEMU\).*livemig 2\.40 ms vs QEMU 3\.20 ms \(STOP → RESUME events\), ratio 0\.75 \(at or below QEMU\)/,
    );
    // A failed QEMU run has no blackout to compare.
    const failed = { ...q, measured: { ...q.measured, status: 'failed' as const } };
    expect(downtimeRatios([failed, runs[1]!])[0]).toMatchObject({
      qemuBlackoutMs: null,
      atOrBelowBlackout: false,
    });
  });

  it("livemig's pause → last byte written, the span QEMU's downtime covers, from the report's steps", () => {
    const [a] = enginesPlan({ quick: true }) as [EngineConfig];
    const base = { totalMs: 4000, bytes: 80 * MiB, rounds: 2, stopMiB: 1, cpuMs: 300 };
    const l = run('livemig', a, { ...base, downtimeMs: 6 });
    const report = emptyQemuReport({ options: DEFAULT_OPTIONS, source: 's', destination: 'd' });
    report.switchover = {
      pauseMs: 0.5,
      stateMs: 0.25,
      lastPagesMs: 1,
      digestMs: 0.25,
      sendMs: 0.5,
      checkMs: 3,
      ackMs: 0.5,
      goWithDigest: true,
    };
    const runs = [run('qemu', a, { ...base, downtimeMs: 5 }), { ...l, report }];
    expect(writtenMs(report)).toBe(2.5);
    expect(downtimeRatios(runs)[0]).toMatchObject({ ratio: 1.2, atOrBelow: false, livemigWrittenMs: 2.5 });
    expect(downtimeLines(downtimeRatios(runs))[0]).toMatch(/pause → last byte written 2\.5 ms/);
  });

  it("QEMU's post-copy downtime overwritten by its whole post-copy phase (0 ms on its clock reads as unset): under 1 ms, not at or below", () => {
    const post = enginesPlan().find((c) => c.strategy === 'postcopy')!;
    const base = { totalMs: 3434, bytes: 120 * MiB, rounds: 1, stopMiB: 0, cpuMs: 300 };
    const overwritten = [
      run('qemu', post, { ...base, downtimeMs: 3333 }),
      run('livemig', post, { ...base, totalMs: 2400, downtimeMs: 3.3 }),
    ];
    expect(downtimeRatios(overwritten)).toEqual([
      {
        config: post.id,
        qemuMs: 0,
        livemigMs: 3.3,
        ratio: null,
        atOrBelow: false,
        livemigWrittenMs: null,
        qemuUnderOneMs: true,
        qemuBlackoutMs: null,
        blackoutRatio: null,
        atOrBelowBlackout: false,
      },
    ]);
    expect(downtimeLines(downtimeRatios(overwritten))[0]).toMatch(/vs QEMU under 1 ms .* \(ABOVE QEMU\)/);
    // A real post-copy switch-over (a few ms of a 3.4 s migration) is QEMU's figure as it is.
    const real = [overwritten[0]!, overwritten[1]!].map((r, i) =>
      i === 0 ? run('qemu', post, { ...base, downtimeMs: 2 }) : r,
    );
    expect(downtimeRatios(real)[0]).toMatchObject({ qemuMs: 2, ratio: 1.65, atOrBelow: false });
    expect(downtimeRatios(real)[0]?.qemuUnderOneMs).toBeUndefined();
  });

  it('livemig hands over where QEMU does: GO with the digest (pre-copy) or with the post-copy start', () => {
    for (const c of enginesPlan()) {
      const o = livemigOptions(c);
      // Everything else is the shared settings.
      expect(o).toMatchObject(engineOptions(c));
      if (c.strategy === 'postcopy') expect(o).toMatchObject({ postcopyGoWithStart: true });
      else expect(o).toMatchObject({ goWithDigest: true });
    }
  });

  it('modelled energy grows with CPU time and duration', () => {
    expect(modelledEnergyJ(0, 1000, 2)).toBeGreaterThan(0);
    expect(modelledEnergyJ(1000, 1000, 2)).toBeGreaterThan(modelledEnergyJ(100, 1000, 2));
    expect(modelledEnergyJ(100, 2000, 2)).toBeGreaterThan(modelledEnergyJ(100, 1000, 2));
    expect(modelledEnergyJ(100, 0, 2)).toBe(0);
  });
});
