import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SVARD } from './page-order.js';
import { cellRecords, medianMeasured, planOf, runExperiment } from './runner.js';
import { EXPERIMENT_NAMES, type Measured } from './types.js';

describe('experiment runner', () => {
  it('runs codecs in tiny mode on real agents and writes JSON, CSV and an HTML report with SVG charts', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livemig-exp-'));
    try {
      const seen: number[] = [];
      const r = await runExperiment('codecs', { tiny: true, out, onProgress: (p) => seen.push(p.done) });
      expect(r.results.length).toBe(planOf('codecs', { tiny: true }).length);
      for (const c of r.results) {
        expect(c.measured.status).toBe('completed');
        expect(c.measured.verified).toBe(true);
        expect(c.measured.bytes).toBeGreaterThan(0);
      }
      // Zero pages do not travel in round 1: half of the guest is zero, so less than its RAM crosses the wire.
      const zero = r.results.find((c) => c.labels.codec === 'zero-page')!;
      expect(zero.measured.pagesZero).toBeGreaterThan(0);
      expect(seen.at(-1)).toBe(r.results.length);
      const dir = join(out, 'codecs');
      const html = await readFile(join(dir, 'report.html'), 'utf8');
      expect(html).toContain('<svg');
      expect(html).not.toContain('<script');
      const json = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as {
        experiment: string;
        cells: unknown[];
        config: { mode: string; seed: number };
      };
      expect(json.experiment).toBe('codecs');
      expect(json.config).toMatchObject({ mode: 'tiny', seed: 1 });
      expect(json.cells.length).toBe(r.results.length);
      const csv = await readFile(join(dir, 'cells.csv'), 'utf8');
      expect(csv.trim().split('\n').length).toBe(r.results.length + 1);
      expect(csv.split('\n')[0]).toContain('codec');
      expect((await readFile(join(dir, 'codecs.csv'), 'utf8')).split('\n')[0]).toContain('MiB sent');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('plans every experiment with unique cell ids, more cells in quick than in tiny mode', () => {
    for (const name of EXPERIMENT_NAMES) {
      const tiny = planOf(name, { tiny: true });
      const quick = planOf(name, { quick: true });
      expect(new Set(quick.map((c) => c.id)).size).toBe(quick.length);
      expect(tiny.length).toBeGreaterThan(0);
      expect(quick.length).toBeGreaterThanOrEqual(tiny.length);
      // page-order's Svärd yardstick is a fixed 128 MiB guest in every mode (issue 17: the workload named there).
      for (const c of quick.filter((c) => !c.id.startsWith(`${SVARD}/`)))
        expect(c.spec.guest.ramBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    }
  });

  it('takes medians of numbers, the most common status, and verified only if every repetition was', () => {
    const base = medianMeasured([]);
    const reps: Measured[] = [
      { ...base, status: 'completed', verified: true, bytes: 10, downtimeMs: 5 },
      { ...base, status: 'failed', verified: false, bytes: 30, downtimeMs: 1 },
      { ...base, status: 'completed', verified: true, bytes: 20, downtimeMs: 3 },
    ];
    const m = medianMeasured(reps);
    expect(m.bytes).toBe(20);
    expect(m.downtimeMs).toBe(3);
    expect(m.status).toBe('completed');
    expect(m.verified).toBe(false);
    expect(medianMeasured(reps.slice(0, 2)).bytes).toBe(20);
  });

  it('flattens cells with their labels and predictions for CSV', () => {
    const m = medianMeasured([]);
    const p = { totalTimeMs: 1, downtimeMs: 2, bytes: 3, rounds: 4, converged: true, ratio: 0.5 };
    const [rec] = cellRecords([
      { id: 'a', labels: { workload: 'gap' }, measured: m, predicted: p, repetitions: [m] },
    ]);
    expect(rec).toMatchObject({ id: 'a', workload: 'gap', predicted_rounds: 4, predicted_ratio: 0.5 });
    expect(rec).not.toHaveProperty('calibrated_rounds');
  });

  it('rejects an unknown experiment with a usage error', async () => {
    await expect(runExperiment('nope' as never, { tiny: true })).rejects.toThrow(/unknown experiment/);
  });
});
