import { describe, expect, it } from 'vitest';
import { predictPrecopy } from '../migration/model.js';
import { workingSetAt } from '../profile/index.js';
import { guestProgramProfile, modelQemuPlan, predictCell } from './model-qemu.js';

const MiB = 2 ** 20;
const cell = modelQemuPlan({ tiny: true })[0]!;
const engine = {
  startSec: 0.05,
  switchoverSec: 0.003,
  pageSec: 30e-6,
  zeroPageSec: 0.3e-6,
  pageHeaderBytes: 9,
  linkBandwidth: 1e9,
};

describe('model-qemu', () => {
  it("the guest program's profile: uniform writes over its region, W(t) = D(1 − e^(−rt/D))", () => {
    const p = guestProgramProfile(cell, 0.5);
    const D = cell.dirtyMiB * 256;
    expect(p.ramPages).toBe(cell.ramMiB * 256);
    expect(workingSetAt(p, 1000)).toBeCloseTo(D * (1 - Math.exp(-cell.rate / D)), -1);
    // Never more than the region, however long the window.
    expect(workingSetAt(p, 10 * 60_000)).toBeLessThanOrEqual(D + 1);
    // Whole-page writes overflow XBZRLE; 64-byte writes encode to about 68 bytes.
    expect(p.xbzrle[0]!.overflow).toBe(1);
    const small = guestProgramProfile({ ...cell, bytesPerWrite: 64, xbzrle: true }, 0.5);
    expect(small.xbzrle[0]!.overflow).toBe(0);
    expect(small.xbzrle[0]!.ratio).toBeCloseTo(68 / 4096, 6);
  });

  it("QEMU's rule switches over mid-round once the rest fits the limit, and sends it unthrottled", () => {
    const c = { ...cell, rate: 1, bandwidth: 16 * MiB };
    const qemu = predictCell(c, engine, 0.5);
    const roundEnd = predictPrecopy({
      ramBytes: c.ramMiB * MiB,
      dirtyRate: 0,
      bandwidth: c.bandwidth,
      profile: guestProgramProfile(c, 0.5),
      engine,
      migration: { maxBandwidth: c.bandwidth, downtimeLimitMs: c.downtimeLimitMs },
    });
    // A near-idle guest: QEMU stops round 1 with up to limit × bandwidth (4.8 MiB) pending and sends it at the
    // engine's own speed, so it finishes sooner, with a longer downtime, than a switch-over after the round.
    expect(qemu.rounds).toBe(1);
    expect(qemu.stopCopyBytes).toBeGreaterThan(4 * MiB);
    expect(qemu.stopCopyBytes).toBeLessThanOrEqual(0.3 * c.bandwidth + 1);
    expect(qemu.totalTime).toBeLessThan(roundEnd.totalTime);
    expect(qemu.downtime).toBeGreaterThan(roundEnd.downtime);
    expect(qemu.downtime).toBeLessThan(0.3);
  });
});
