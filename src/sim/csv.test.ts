import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { loadCsvDir, loadCsvFile, parseCsvColumns, parseCsvVm, resample } from './csv.js';
import { TraceFormatError } from './trace-error.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'livemig-csv-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function failure(f: () => unknown): TraceFormatError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TraceFormatError);
  return err as TraceFormatError;
}

describe('CSV traces, one VM per column', () => {
  it('reads a header of VM names and one row per 5-minute sample', () => {
    const w = parseCsvColumns('web,db,"batch, nightly"\n10,20.4,0\n11,20.6,100\n12.5,0,99.5\n', 'dc.csv');
    expect(w).toMatchObject({
      name: 'dc',
      vmNames: ['web', 'db', 'batch, nightly'],
      vms: 3,
      samplesPerVm: 3,
    });
    // VM-major; each value rounded to a whole percent.
    expect(Array.from(w.samples)).toEqual([10, 11, 13, 20, 21, 0, 0, 100, 100]);
  });

  it('skips a timestamp column after checking its step, seconds or ISO dates', () => {
    const w = parseCsvColumns('timestamp,a\n0,1\n300,2\n600,3\n', 't.csv');
    expect(Array.from(w.samples)).toEqual([1, 2, 3]);
    const iso = parseCsvColumns('Time,a\n2011-03-03T00:00:00Z,1\n2011-03-03T00:05:00Z,2\n', 'iso.csv');
    expect(iso.vmNames).toEqual(['a']);
    const e = failure(() => parseCsvColumns('timestamp,a\n0,1\n300,2\n900,3\n', 't.csv'));
    expect(e.message).toBe(
      'trace t.csv, line 4, column 1: timestamp 900 is 600 s after the previous one, expected 300 s ' +
        '(the sample interval: --interval, default 5m); fill gaps or resample first',
    );
  });

  it('averages a finer interval over 5-minute windows and holds a coarser one', () => {
    const rows = Array.from({ length: 11 }, (_, i) => `${i * 60},${i < 5 ? 10 : 21}`).join('\n');
    // 60-s rows: 5 per sample; the 11th row is a partial window, dropped.
    const w = parseCsvColumns(`timestamp,vm\n${rows}\n`, 'fine.csv', 60);
    expect(Array.from(w.samples)).toEqual([10, 21]);
    const coarse = parseCsvColumns('a\n40\n60\n', 'coarse.csv', 900);
    expect(Array.from(coarse.samples)).toEqual([40, 40, 40, 60, 60, 60]);
    expect(Array.from(resample([1, 2, 2, 2], 150))).toEqual([2, 2]);
    expect(() => resample([1], 420)).toThrow(UsageError);
    expect(() => parseCsvColumns('a\n1\n', 'x.csv', 7)).toThrow(/--interval: 7 s cannot be brought/);
    const e = failure(() => parseCsvColumns('a\n1\n2\n', 'few.csv', 60));
    expect(e.message).toMatch(
      /few.csv: 2 rows at 60-s intervals make no whole 5-minute sample; expected at least 5/,
    );
  });

  it('names file, line and column of a bad value, and the VM', () => {
    const e1 = failure(() => parseCsvColumns('a,b\n1,2\n3,x7\n', 'bad.csv'));
    expect(e1.message).toBe(
      'trace bad.csv, line 3, column 2 (VM "b"): "x7" is not a number; expected CPU utilisation in percent, 0–100',
    );
    expect([e1.file, e1.line, e1.column]).toEqual(['bad.csv', 3, 2]);
    const e2 = failure(() => parseCsvColumns('a,b\n1,2\n3,100.5\n', 'hot.csv'));
    expect(e2.message).toBe(
      'trace hot.csv, line 3, column 2 (VM "b"): 100.5 % is out of range; expected 0–100',
    );
    expect(failure(() => parseCsvColumns('a,b\n-1,2\n', 'neg.csv')).message).toMatch(/-1 % is out of range/);
    expect(failure(() => parseCsvColumns('a,b\n1,\n', 'gap.csv')).message).toMatch(
      /line 2, column 2 \(VM "b"\): empty value; expected CPU/,
    );
  });

  it('names a row with the wrong number of columns, an empty file, a header without rows, bad names', () => {
    expect(failure(() => parseCsvColumns('a,b,c\n1,2,3\n4,5\n', 'cols.csv')).message).toBe(
      'trace cols.csv, line 3: 2 values, expected 3 (one per header column)',
    );
    expect(failure(() => parseCsvColumns('a,b\n1,2\n\n3,4\n', 'blank.csv')).message).toBe(
      'trace blank.csv, line 3: 0 values, expected 2 (one per header column)',
    );
    expect(failure(() => parseCsvColumns('\n\n', 'empty.csv')).message).toBe(
      'trace empty.csv: the file is empty; expected a header row, then one row per sample',
    );
    expect(failure(() => parseCsvColumns('a,b\n', 'head.csv')).message).toBe(
      'trace head.csv, line 2: no sample rows after the header row',
    );
    expect(failure(() => parseCsvColumns('a,a\n1,2\n', 'dup.csv')).message).toMatch(
      /dup.csv, line 1, column 2: VM name "a" appears twice/,
    );
    expect(failure(() => parseCsvColumns('timestamp\n1\n', 'none.csv')).message).toMatch(/names no VM/);
  });
});

describe('CSV traces, a folder of per-VM files (timestamp,cpu)', () => {
  it('reads every .csv file as one VM, in byte order, ignoring other files', async () => {
    const dir = join(root, 'vms');
    await mkdir(dir);
    await writeFile(join(dir, 'web.csv'), 'timestamp,cpu\n0,5\n300,6\n600,7\n');
    await writeFile(join(dir, 'DB.csv'), 'Timestamp,CPU usage [%]\r\n1000,50\r\n1300,60\r\n1600,70\r\n');
    await writeFile(join(dir, 'README.md'), 'not a trace');
    const w = await loadCsvDir(dir);
    expect(w).toMatchObject({ name: 'vms', vmNames: ['DB', 'web'], vms: 2, samplesPerVm: 3 });
    expect(Array.from(w.samples)).toEqual([50, 60, 70, 5, 6, 7]);
  });

  it('needs two columns, a regular step and the same length in every file', async () => {
    expect(failure(() => parseCsvVm('t,cpu,mem\n0,1,2\n', 'three.csv')).message).toMatch(
      /three.csv, line 1: 3 header columns, expected 2: timestamp,cpu/,
    );
    expect(failure(() => parseCsvVm('t,cpu\n0,1\nlater,2\n', 'when.csv')).message).toMatch(
      /when.csv, line 3, column 1: timestamp "later" is neither seconds nor an ISO 8601 date/,
    );
    expect(failure(() => parseCsvVm('t,cpu\n0,1\n300,2;\n', 'semi.csv')).message).toMatch(
      /semi.csv, line 3, column 2 \(VM "semi"\): "2;" is not a number/,
    );
    const dir = join(root, 'uneven');
    await mkdir(dir);
    await writeFile(join(dir, 'a.csv'), 'timestamp,cpu\n0,5\n300,6\n');
    await writeFile(join(dir, 'b.csv'), 'timestamp,cpu\n0,5\n');
    await expect(loadCsvDir(dir)).rejects.toThrow(
      `trace ${join(dir, 'b.csv')}: 1 five-minute samples, but a.csv has 2; every VM needs the same number`,
    );
  });

  it('reads a one-file trace from disk and reports a missing file as a usage error', async () => {
    const file = join(root, 'cluster.csv');
    await writeFile(file, '\uFEFFvm1,vm2\n1,2\n');
    expect((await loadCsvFile(file)).vmNames).toEqual(['vm1', 'vm2']);
    await expect(loadCsvFile(join(root, 'nope.csv'))).rejects.toThrow(UsageError);
  });
});
