import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../errors.js';
import { TraceWriter } from '../../trace/writer.js';
import { copyRam, Guest, type GuestConfig, ramEquals, referenceRam, resolveConfig } from '../index.js';
import { TraceReplay } from './trace.js';

const PS = 4096;
const PAGES = 48;
const dir = mkdtempSync(join(tmpdir(), 'livemig-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A trace writer for test programs recorded every `intervalMs`. */
function writer(program: string, intervalMs: number): TraceWriter {
  return new TraceWriter({
    pageSize: PS,
    intervalMs,
    method: 'page-compare',
    compression: 'deflate',
    meta: { program, command: [program] },
  });
}

/** A small trace and the page contents after each record (what replay must reproduce). */
function makeTrace(): { file: string; states: Uint8Array[][]; writes: number } {
  const w = writer('test', 50);
  const cur = Array.from({ length: PAGES }, () => new Uint8Array(PS));
  const states: Uint8Array[][] = [];
  // Snapshot: every third page zero (left out), the rest text-like.
  const snapPages: number[] = [];
  for (let p = 0; p < PAGES; p++) {
    if (p % 3 === 0) continue;
    snapPages.push(p);
    for (let i = 0; i < PS; i++) cur[p]![i] = 32 + ((p * 31 + i * 7) % 90);
  }
  w.add(0, snapPages, Buffer.concat(snapPages.map((p) => cur[p]!)));
  states.push(cur.map((c) => Uint8Array.from(c)));
  let writes = 0;
  for (let r = 1; r <= 12; r++) {
    const pages = [...new Set([r % PAGES, (r * 7) % PAGES, (r * 13 + 5) % PAGES, 40])].sort((a, b) => a - b);
    const deltas = Buffer.alloc(pages.length * PS);
    pages.forEach((p, k) => {
      const next = Uint8Array.from(cur[p]!);
      for (let i = (r * 64) % PS; i < PS; i += 509) next[i] = (next[i]! + r) & 0xff;
      for (let i = 0; i < PS; i++) deltas[k * PS + i] = cur[p]![i]! ^ next[i]!;
      cur[p] = next;
    });
    w.add(r * 50, pages, deltas);
    writes += pages.length;
    states.push(cur.map((c) => Uint8Array.from(c)));
  }
  const file = join(dir, 'small.lmtrace');
  writeFileSync(file, w.finish(PAGES).trace!);
  return { file, states, writes };
}

const { file, states, writes } = makeTrace();

/**
 * A quiet program with one burst: one page write per 100 ms record up to 1000 ms, 40 writes in the record ending
 * at 1100 ms, then one write at 1200 and 1300 ms. 52 writes over 1300 ms: a mean of 40 writes/s.
 */
function makeBurstTrace(): string {
  const w = writer('burst', 100);
  w.add(0, [0], Buffer.alloc(PS, 65));
  const delta = (pages: number[]) => Buffer.alloc(pages.length * PS, 1);
  for (let r = 1; r <= 10; r++) w.add(r * 100, [r], delta([r]));
  const burst = Array.from({ length: 40 }, (_, k) => 11 + k);
  w.add(1100, burst, delta(burst));
  w.add(1200, [60], delta([60]));
  w.add(1300, [61], delta([61]));
  const out = join(dir, 'burst.lmtrace');
  writeFileSync(out, w.finish(64).trace!);
  return out;
}
const burstFile = makeBurstTrace();

function ramIs(g: Guest, pages: Uint8Array[]): boolean {
  return pages.every((c, p) => Buffer.from(g.ram.page(p)).equals(Buffer.from(c)));
}

describe('trace replay workload', () => {
  it('starts from the snapshot, reaches the last record after every write, and walks back to the snapshot', async () => {
    const config: GuestConfig = { ramBytes: 64 * PS, workload: { name: `trace:${file}` } };
    const g = await Guest.create(config);
    try {
      expect(ramIs(g, states[0]!)).toBe(true);
      await g.runToStep(writes);
      expect(ramIs(g, states.at(-1)!)).toBe(true);
      expect(g.state().vcpus[0]!.registers).toEqual({ pos: writes, laps: 0 });
      await g.runToStep(2 * writes);
      expect(ramIs(g, states[0]!)).toBe(true);
      expect(g.state().vcpus[0]!.registers).toEqual({ pos: 0, laps: 1 });
    } finally {
      await g.destroy();
    }
  });

  it.each([1, 2])('holds the determinism oracle with %i vCPU(s), paused wherever it runs', async (vcpus) => {
    const config: GuestConfig = {
      ramBytes: 64 * PS,
      vcpus,
      workload: { name: 'trace', params: { traceFile: file, traceSpeed: 0 } },
    };
    const src = await Guest.create(config);
    const dst = await Guest.createIncoming(config);
    try {
      src.resume();
      await new Promise((r) => setTimeout(r, 30));
      await src.pause();
      const state = src.state();
      copyRam(src.ram, dst.ram);
      dst.loadState(JSON.parse(JSON.stringify(state)));
      const targets = state.vcpus.map((v) => v.step + 37);
      await dst.runToStep(targets);
      expect(ramEquals(dst.ram, await referenceRam(config, targets))).toEqual({
        equal: true,
        firstDifferentPage: -1,
      });
      // The check can fail: the source, not run on, differs (37 steps change pages).
      expect(ramEquals(src.ram, dst.ram).equal).toBe(false);
    } finally {
      await src.destroy();
      await dst.destroy();
    }
  });

  it('resolves the working set, the page size, the checksum and the write rate from the file', () => {
    const r = resolveConfig({ ramBytes: 64 * PS, vcpus: 2, workload: { name: `trace:${file}` } });
    expect(r.workload.name).toBe('trace');
    const p = r.workload.params;
    expect(p.workingSetBytes).toBe(PAGES * PS);
    expect(p.traceFile).toBe(file);
    expect(p.traceCrc).not.toBe(0);
    // writes pages over 600 ms, speed 1, split across 2 vCPUs.
    expect(p.writeRate).toBeCloseTo(writes / 0.6 / 2, 6);
    expect(
      resolveConfig({
        ramBytes: 64 * PS,
        workload: { name: 'trace', params: { traceFile: file, traceSpeed: 3 } },
      }).workload.params.writeRate,
    ).toBeCloseTo((writes / 0.6) * 3, 6);
    // A resolved config resolves to itself (loadState compares them).
    expect(resolveConfig(r)).toEqual(r);
  });

  it('refuses a missing file, a wrong page size, too little RAM, a changed file and a corrupt one', () => {
    const cfg = (name: string, extra: Partial<GuestConfig> = {}) =>
      resolveConfig({ ramBytes: 64 * PS, workload: { name: name as `trace:${string}` }, ...extra });
    expect(() => cfg(`trace:${join(dir, 'nope.lmtrace')}`)).toThrow(/cannot read it \(ENOENT\)/);
    expect(() => cfg(`trace:${file}`, { pageSize: 8192, ramBytes: 64 * 8192 })).toThrow(/--page-size 4096/);
    expect(() => cfg(`trace:${file}`, { ramBytes: 16 * PS })).toThrow(/at least that much RAM/);
    expect(() => resolveConfig({ ramBytes: 64 * PS, workload: { name: 'trace' } })).toThrow(UsageError);
    expect(() =>
      resolveConfig({ ramBytes: 64 * PS, workload: { name: 'gap', params: { traceFile: file } } }),
    ).toThrow(/known params/);
    const r = resolveConfig({ ramBytes: 64 * PS, workload: { name: `trace:${file}` } });
    const stale = structuredClone(r);
    stale.workload.params.traceCrc = (r.workload.params.traceCrc! + 1) >>> 0;
    expect(() => resolveConfig(stale)).toThrow(/has changed/);
    // 48 vCPUs own one page each; page 16 is the first never written after the snapshot.
    expect(() => cfg(`trace:${file}`, { vcpus: 48 })).toThrow(
      /vCPU 16's share \(pages 16\.\.16\) is never written after the snapshot; use fewer vCPUs \(at most 14\)/,
    );
    const junk = join(dir, 'junk.lmtrace');
    writeFileSync(junk, 'not a trace at all, but long enough to hold a header......');
    expect(() => cfg(`trace:${junk}`)).toThrow(/not a livemig trace/);
  });

  it('times each page write at its place in the recording, and mirrors the timeline on the walk back', () => {
    const r = resolveConfig({ ramBytes: 64 * PS, workload: { name: `trace:${burstFile}` } });
    expect(r.workload.params.tracePacing).toBe('recorded');
    const replay = new TraceReplay({
      params: r.workload.params,
      pageSize: PS,
      firstPage: 0,
      pageCount: 64,
      corpus: undefined as never, // the trace workload writes recorded deltas, never generated content
    });
    const at = (pos: number, laps = 0) => {
      replay.setRegisters({ pos, laps });
      return replay.dueMs();
    };
    expect(at(0)).toBe(100); // the first record's one write, at the end of its interval
    expect(at(9)).toBe(1000);
    expect(at(10)).toBe(1002.5); // the burst: 40 writes spread over 1000..1100 ms
    expect(at(49)).toBe(1100);
    expect(at(51)).toBe(1300);
    expect(at(52)).toBe(1300); // walking back: the mirror image of the forward walk
    expect(at(103)).toBe(2500);
    expect(at(0, 1)).toBe(2700);
    let last = -1;
    for (let pos = 0; pos < 104; pos++) {
      expect(at(pos)).toBeGreaterThanOrEqual(last);
      last = at(pos);
    }
  });

  it('replays a quiet spell quietly and the burst after it (recorded pacing, speed 1)', async () => {
    const g = await Guest.create({ ramBytes: 64 * PS, workload: { name: `trace:${burstFile}` } });
    try {
      const t0 = performance.now();
      g.resume();
      // The guest clock starts at the first write (100 ms) and runs no faster than the wall clock, so at wall time
      // w at most the writes due by 100 + w ms can have run: 9 up to w = 850 ms. (A loaded host only lowers the
      // count.) Mean pacing (40 writes/s from the start) would have run ~34 by then.
      for (;;) {
        const done = g.steps()[0]!;
        const w = performance.now() - t0;
        if (w > 850) break;
        const due = Math.min(10, Math.floor((100 + w) / 100));
        expect(done).toBeLessThanOrEqual(due);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      // Then the burst and the rest run.
      const deadline = performance.now() + 20_000;
      while (g.steps()[0]! < 52 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(g.steps()[0]).toBeGreaterThanOrEqual(52);
    } finally {
      await g.destroy();
    }
  });

  it('takes a given write rate as mean pacing; recorded pacing keeps the recorded mean as its write rate', () => {
    const given = (params: Record<string, unknown>) =>
      resolveConfig({
        ramBytes: 64 * PS,
        workload: { name: 'trace', params: { traceFile: burstFile, ...params } },
      }).workload.params;
    expect(given({}).writeRate).toBeCloseTo(40, 6);
    expect(given({ tracePacing: 'mean' }).tracePacing).toBe('mean');
    expect(given({ writeRate: 500 })).toMatchObject({ writeRate: 500, tracePacing: 'mean' });
    expect(given({ writeRate: 500, tracePacing: 'mean' })).toMatchObject({
      writeRate: 500,
      tracePacing: 'mean',
    });
    expect(given({ writeRate: 500, tracePacing: 'recorded' })).toMatchObject({
      writeRate: 40,
      tracePacing: 'recorded',
    });
    expect(() => given({ tracePacing: 'bursty' })).toThrow(/use recorded or mean/);
  });
});
