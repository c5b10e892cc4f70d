/**
 * `livemig experiment engines --tiny` end to end: one small config migrated by real QEMU (the test VM under TCG) and
 * by livemig's engine; both must complete, the QEMU destination guest must find no corrupt page, and the results
 * (JSON, CSV, HTML) must hold the side-by-side table. Skips when QEMU >= 9 or the test VM's packages are missing.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runEngines } from '../src/experiments/engines.js';
import { prepareQemuTestVm } from './qemu-vm.js';

const { skipReason } = await prepareQemuTestVm('engines.test');

describe.skipIf(skipReason !== undefined)('experiment engines (tiny)', () => {
  it('migrates the same workload with QEMU and livemig and writes the side-by-side report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'engines-'));
    const r = await runEngines({ tiny: true, out });
    expect(r.runs.map((x) => x.engine)).toEqual(['qemu', 'livemig']);
    const [q, l] = r.runs;
    expect(q?.measured.status, q?.measured.errorCode).toBe('completed');
    expect(q?.healthy).toBe(true);
    expect(l?.measured.status, l?.measured.errorCode).toBe('completed');
    expect(l?.measured.verified).toBe(true);
    // The same configured link and guest: both sent at least the dirtied region, both report rounds and CPU.
    for (const x of r.runs) {
      expect(x.measured.bytes).toBeGreaterThan(16 * 2 ** 20);
      expect(x.measured.rounds).toBeGreaterThanOrEqual(1);
      expect(x.migrationCpuMs).toBeGreaterThan(0);
    }
    expect(r.table.rows).toHaveLength(2);
    expect(r.findings.length).toBeGreaterThan(0);
    for (const f of ['results.json', 'side-by-side.csv', 'runs.csv', 'report.html'])
      expect(existsSync(join(out, 'engines', f))).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'engines', 'results.json'), 'utf8'));
    expect(json.notes).toHaveProperty('qemuBetter');
    expect(readFileSync(join(out, 'engines', 'report.html'), 'utf8')).toContain('<svg');
  }, 240_000);
});
