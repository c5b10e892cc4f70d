import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { PLANETLAB_DAYS, planetlabDayFile } from './bundled.js';
import { loadTraceSource, resolveTraces } from './sources.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'livemig-sources-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const day = `${Array.from({ length: 288 }, () => '4').join('\n')}\n`;

describe('--day / --days names and paths', () => {
  it('bundled days by name, "all" for the ten, comma lists', async () => {
    expect(await resolveTraces('20110303', { many: false })).toEqual([{ bundled: '20110303' }]);
    const all = await resolveTraces('all', { many: true });
    expect(all).toHaveLength(10);
    expect(all.map((s) => ('bundled' in s ? s.bundled : ''))).toEqual([...PLANETLAB_DAYS]);
    expect(await resolveTraces('20110303,20110306', { many: true })).toEqual([
      { bundled: '20110303' },
      { bundled: '20110306' },
    ]);
    await expect(resolveTraces('20110303,20110306', { many: false })).rejects.toThrow(
      /--day takes one workload; for several use --days/,
    );
    await expect(resolveTraces('20110304', { many: true })).rejects.toThrow(
      /--days: no bundled PlanetLab day "20110304"; the bundled days are 20110303, .* 20110420 or all/,
    );
    await expect(resolveTraces('no/such/place', { many: false })).rejects.toThrow(
      /--day: "no\/such\/place" is neither a bundled PlanetLab day .* nor an existing file or folder/,
    );
    await expect(resolveTraces('20110303', { many: false, interval: 60 })).rejects.toThrow(
      /--interval applies to CSV traces only/,
    );
  });

  it('a folder of day folders or of packs expands for --days and is refused by --day', async () => {
    const days = join(root, 'days');
    for (const d of ['d2', 'd1']) {
      await mkdir(join(days, d), { recursive: true });
      await writeFile(join(days, d, 'vm'), day);
    }
    await writeFile(join(days, 'README.md'), 'ignored');
    expect(await resolveTraces(days, { many: true })).toEqual([
      { dir: join(days, 'd1') },
      { dir: join(days, 'd2') },
    ]);
    await expect(resolveTraces(days, { many: false })).rejects.toThrow(/holds several days/);
    const packs = join(root, 'packs');
    await mkdir(packs);
    await copyFile(planetlabDayFile('20110420'), join(packs, '20110420.trace.br'));
    const [pack] = await resolveTraces(packs, { many: true });
    expect(pack).toEqual({ file: join(packs, '20110420.trace.br') });
    const w = await loadTraceSource(pack!);
    expect([w.name, w.vms]).toEqual(['20110420', 1033]);
  });

  it('a single folder, a CSV folder, a CSV file; other files are refused', async () => {
    const one = join(root, 'days', 'd1');
    expect(await resolveTraces(one, { many: false })).toEqual([{ dir: one }]);
    expect((await loadTraceSource({ dir: one })).vms).toBe(1);
    await expect(resolveTraces(one, { many: false, interval: 60 })).rejects.toThrow(
      /--interval applies to CSV traces only/,
    );
    const csvDir = join(root, 'csvs');
    await mkdir(csvDir);
    await writeFile(join(csvDir, 'a.csv'), 'timestamp,cpu\n0,10\n60,20\n120,30\n180,40\n240,50\n');
    expect(await resolveTraces(csvDir, { many: false, interval: 60 })).toEqual([
      { dir: csvDir, interval: 60 },
    ]);
    const w = await loadTraceSource({ dir: csvDir, interval: 60 });
    expect(Array.from(w.samples)).toEqual([30]);
    const file = join(root, 'wide.csv');
    await writeFile(file, 'a,b\n1,2\n');
    expect(await resolveTraces(file, { many: false })).toEqual([{ file }]);
    const txt = join(root, 'notes.txt');
    await writeFile(txt, '1\n');
    const err = await resolveTraces(txt, { many: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(
      /is a file but neither a \.csv file .* nor a trace pack \(\.trace\.br\)/,
    );
  });
});
