import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { energyDeltaUj, readRapl } from './rapl.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** A fake /sys/class/powercap: zone id -> files. */
function fakePowercap(zones: Record<string, Record<string, string>>): string {
  const root = mkdtempSync(join(tmpdir(), 'livemig-powercap-'));
  roots.push(root);
  for (const [id, files] of Object.entries(zones)) {
    mkdirSync(join(root, id));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, id, name), text);
  }
  return root;
}

describe('readRapl', () => {
  it('reads every zone of a package with its sub-zones, in tree order', () => {
    const root = fakePowercap({
      'intel-rapl': { enabled: '1\n' }, // the control type itself: no counter
      'intel-rapl:0:1': { name: 'dram\n', energy_uj: '5000\n', max_energy_range_uj: '65712999613\n' },
      'intel-rapl:0': {
        name: 'package-0\n',
        energy_uj: '123456789\n',
        max_energy_range_uj: '262143328850\n',
      },
      'intel-rapl:0:0': { name: 'core\n', energy_uj: '987654\n', max_energy_range_uj: '262143328850\n' },
    });
    expect(readRapl(root)).toEqual({
      zones: [
        { id: 'intel-rapl:0', name: 'package-0', energyUj: 123456789, maxEnergyRangeUj: 262143328850 },
        { id: 'intel-rapl:0:0', name: 'core', energyUj: 987654, maxEnergyRangeUj: 262143328850 },
        { id: 'intel-rapl:0:1', name: 'dram', energyUj: 5000, maxEnergyRangeUj: 65712999613 },
      ],
    });
  });

  it('follows the counter as it changes between readings', () => {
    const root = fakePowercap({
      'intel-rapl:0': { name: 'package-0', energy_uj: '1000000', max_energy_range_uj: '262143328850' },
    });
    const a = readRapl(root)!.zones[0]!;
    writeFileSync(join(root, 'intel-rapl:0', 'energy_uj'), '3500000\n');
    const b = readRapl(root)!.zones[0]!;
    expect(energyDeltaUj(a.energyUj, b.energyUj, b.maxEnergyRangeUj)).toBe(2_500_000); // 2.5 J
  });

  it('leaves out zones without a readable counter; names a nameless zone by its id', () => {
    const root = fakePowercap({
      'intel-rapl:0': { name: 'package-0', energy_uj: 'garbage' },
      'intel-rapl:1': { energy_uj: '42' },
      'dtpm:0': { name: 'soc' },
    });
    expect(readRapl(root)).toEqual({
      zones: [
        {
          id: 'intel-rapl:1',
          name: 'intel-rapl:1',
          energyUj: 42,
          maxEnergyRangeUj: Number.POSITIVE_INFINITY,
        },
      ],
    });
  });

  it('returns undefined without RAPL: no tree, an empty tree, or no counters', () => {
    expect(readRapl(join(tmpdir(), 'livemig-no-such-powercap'))).toBeUndefined();
    expect(readRapl(fakePowercap({}))).toBeUndefined();
    expect(readRapl(fakePowercap({ 'intel-rapl': { enabled: '0' } }))).toBeUndefined();
  });

  it('counts one wrap-around of the counter', () => {
    expect(energyDeltaUj(100, 250, 1000)).toBe(150);
    expect(energyDeltaUj(900, 50, 1000)).toBe(150);
  });
});
