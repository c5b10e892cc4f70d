/**
 * `livemig experiment model-qemu --tiny` end to end: QEMU's costs calibrated on two migrations of the test VM, then
 * one cell migrated for real and predicted by the profile-fed model with QEMU's switch-over rule; the destination
 * guest must find no corrupt page and the result must carry both figures and their errors. Skips when QEMU >= 9 or
 * the test VM's packages are missing (CI installs them).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runModelQemu } from '../src/experiments/model-qemu.js';
import { prepareQemuTestVm } from './qemu-vm.js';

const { skipReason } = await prepareQemuTestVm('model-qemu.test');

describe.skipIf(skipReason !== undefined)('experiment model-qemu (tiny)', () => {
  it('calibrates QEMU, migrates one cell for real and predicts it with the model', async () => {
    const out = mkdtempSync(join(tmpdir(), 'model-qemu-'));
    const r = await runModelQemu({ tiny: true, out });
    expect(r.engine.pageSec).toBeGreaterThan(0);
    expect(r.zeroFraction).toBeGreaterThan(0);
    expect(r.zeroFraction).toBeLessThan(1);
    expect(r.rows).toHaveLength(1);
    const row = r.rows[0]!;
    expect(row.measured.verified).toBe(true);
    // The cell's guest dirties 16 MiB of a 128 MiB VM: both sides move at least that and take at least one round.
    for (const x of [row.measured, row.predicted]) {
      expect(x.bytes).toBeGreaterThan(16 * 2 ** 20);
      expect(x.totalTimeMs).toBeGreaterThan(0);
      expect(x.rounds).toBeGreaterThanOrEqual(1);
    }
    expect(row.error.totalTime).toBeCloseTo(
      (row.predicted.totalTimeMs - row.measured.totalTimeMs) / row.measured.totalTimeMs,
      9,
    );
    expect(existsSync(join(out, 'model-qemu.json'))).toBe(true);
  }, 300_000);
});
