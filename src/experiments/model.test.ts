import { describe, expect, it } from 'vitest';
import { planOf } from './runner.js';

describe('experiment model: its grid', () => {
  it('quick mode covers the whole grid: 13 guests × 4 bandwidths × XBZRLE off/on', () => {
    const cells = planOf('model', { quick: true });
    expect(cells.length).toBe(104);
    const bandwidths = new Set(cells.map((c) => c.labels['MiB/s']));
    expect([...bandwidths].sort((a, b) => Number(a) - Number(b))).toEqual([16, 32, 64, 128]);
    const rates = new Set(cells.filter((c) => c.labels.workload === 'gap').map((c) => c.labels['pages/s']));
    expect([...rates]).toEqual([500, 2000, 6000]);
    expect(new Set(cells.map((c) => c.labels.workload))).toEqual(
      new Set(['idle', 'gap', 'zipf', 'kv', 'sqlite-tpcb', 'redis', 'gcc-cc1']),
    );
  });

  it('--workloads runs part of it (a trace by its name), and names the known ones when one is not', () => {
    const part = planOf('model', { quick: true, workloads: ['idle', 'redis'] });
    expect(part.length).toBe(16);
    expect(new Set(part.map((c) => c.labels.workload))).toEqual(new Set(['idle', 'redis']));
    expect(() => planOf('model', { quick: true, workloads: ['nope'] })).toThrow(
      /unknown workload "nope".*known: idle, gap, zipf, kv/,
    );
  });
});
