import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS } from '../migration/index.js';
import { AVAILABLE, SECTIONS } from './mechanisms.js';
import { planOf, runExperiment } from './runner.js';

describe('experiment mechanisms', () => {
  it('knows which mechanisms this build has from the options themselves', () => {
    expect(AVAILABLE.multifd).toBe('multifdChannels' in DEFAULT_OPTIONS);
    expect(AVAILABLE.preempt).toBe('postcopyPreempt' in DEFAULT_OPTIONS);
    // The sections on this build have cells; the others have none (they are listed as not on this build).
    const sections = new Set(planOf('mechanisms', { quick: true }).map((c) => c.labels.section));
    for (const s of SECTIONS) if (s !== 'preempt') expect(sections.has(s), s).toBe(AVAILABLE[s]);
    // The post-copy baseline runs whether preempt exists or not; the preempt variant only where it exists.
    const preempt = planOf('mechanisms', { quick: true }).filter((c) => c.labels.section === 'preempt');
    expect(preempt.length).toBe(AVAILABLE.preempt ? 2 : 1);
  });

  it('runs in tiny mode: every section on this build ran, every guest checked by the oracle, the others say so', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livemig-mechanisms-'));
    try {
      const r = await runExperiment('mechanisms', { tiny: true, out });
      expect(r.results.length).toBe(planOf('mechanisms', { tiny: true }).length);
      for (const c of r.results) {
        expect(c.measured.status, c.id).toBe('completed');
        expect(c.measured.oracleChecked, c.id).toBe(true);
        expect(c.measured.verified, c.id).toBe(true);
      }
      const ran = new Set(r.results.map((c) => c.labels.section));
      for (const s of SECTIONS) {
        // preempt's table always has the post-copy baseline; the others run only where they exist.
        if (s !== 'preempt') expect(ran.has(s), s).toBe(AVAILABLE[s]);
      }
      const variants = r.results
        .filter((c) => c.labels.section === 'dirty-limit')
        .map((c) => `${c.labels.workload}/${c.labels.variant}`);
      expect(variants.sort()).toEqual(
        ['gap', 'kv-read'].flatMap((w) => ['auto-converge', 'cap', 'dirty-limit'].map((v) => `${w}/${v}`)),
      );
      expect(r.summary.tables.map((t) => t.slug)).toEqual([
        'dirty-limit',
        'downtime-ramp',
        'multifd',
        'preempt',
        'snapshot',
      ]);
      for (const s of SECTIONS.filter((x) => !AVAILABLE[x])) {
        const table = r.summary.tables.find((t) => t.slug === s);
        expect(JSON.stringify(table?.rows), s).toContain('not on this build');
      }
      expect(r.summary.findings.some((f) => f.startsWith('Load average'))).toBe(true);
      expect(r.summary.findings.join(' ')).not.toContain('UNVERIFIED');
      const html = await readFile(join(out, 'mechanisms', 'report.html'), 'utf8');
      expect(html).toContain('<svg');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 900_000);
});
