import { describe, expect, it } from 'vitest';
import { type MeterSample, meterWindow } from './meter-window.js';

/** A meter ticking every 250 ms from `phase`, a guest burning `share` of a core all along, and a sample closed at `close`. */
function series(from: number, phase: number, close: number, share: number): MeterSample[] {
  const out: MeterSample[] = [];
  let last = from;
  for (let at = from + phase; at < close; at += 250) {
    out.push({ at, intervalMs: at - last, guests: [{ id: 'vm0', cpuMs: (at - last) * share }] });
    last = at;
  }
  out.push({ at: close, intervalMs: close - last, guests: [{ id: 'vm0', cpuMs: (close - last) * share }] });
  return out;
}

describe('a host’s measurement window', () => {
  it('measures a steady guest exactly over an interval that is not a whole number of meter ticks', () => {
    const t0 = 1_700_000_000_000;
    for (const phase of [1, 90, 200, 249]) {
      const w = meterWindow(series(t0, phase, t0 + 2_537, 0.04), t0);
      expect(w.end).toBe(t0 + 2_537);
      expect(w.spanMs).toBe(2_537);
      expect(w.cpu.get('vm0')! / w.spanMs).toBeCloseTo(0.04, 12);
    }
  });
  it('skips samples at or before the window’s start, and only opens the window on the first call', () => {
    const t0 = 1_700_000_000_000;
    const s = series(t0 - 1_000, 100, t0 + 500, 0.1);
    const w = meterWindow(s, t0);
    expect(w.cpu.get('vm0')).toBeCloseTo(
      s.filter((x) => x.at > t0).reduce((a, x) => a + x.guests[0]!.cpuMs, 0),
      9,
    );
    expect(meterWindow(s, 0).spanMs).toBe(0);
  });
});
