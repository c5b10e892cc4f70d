import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraceFormatError } from './trace-error.js';
import { loadTraceDir } from './workload.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'livemig-cloudsim-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const day = (f: (k: number) => number) => `${Array.from({ length: 288 }, (_, k) => f(k)).join('\n')}\n`;

/** A folder with the given files; returns its path. */
async function folder(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  return dir;
}

/** The TraceFormatError a load fails with. */
async function failure(dir: string): Promise<TraceFormatError> {
  const err = await loadTraceDir(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TraceFormatError);
  return err as TraceFormatError;
}

describe("a folder in CloudSim's format (a user's own traces)", () => {
  it('loads one VM per file, in byte order of the names, CRLF and trailing blank lines allowed', async () => {
    const dir = await folder('ok', {
      b: day((k) => k % 101),
      a: day(() => 7).replaceAll('\n', '\r\n'),
      B: `${day(() => 100)}\n\n`,
      '.hidden': 'ignored',
    });
    const w = await loadTraceDir(dir);
    expect(w).toMatchObject({ name: 'ok', vmNames: ['B', 'a', 'b'], vms: 3, samplesPerVm: 288 });
    expect(w.samples[0]).toBe(100);
    expect(w.samples[288]).toBe(7);
    expect(Array.from(w.samples.subarray(576, 576 + 3))).toEqual([0, 1, 2]);
    expect(w.samples[576 + 287]).toBe(287 % 101);
  });

  it('takes the first 288 lines and ignores the rest, as CloudSim', async () => {
    const w = await loadTraceDir(await folder('long', { v: `${day(() => 3)}oops\n` }));
    expect(w.samples.every((x) => x === 3)).toBe(true);
  });

  it('names file and line of a non-integer, an out-of-range value and an empty line', async () => {
    const lines = day(() => 5).split('\n');
    lines[41] = '12.5';
    const e1 = await failure(await folder('decimal', { vm1: lines.join('\n') }));
    expect(e1.message).toBe(
      `trace ${join(root, 'decimal', 'vm1')}, line 42: "12.5" is not an integer; expected one whole CPU ` +
        'utilisation percentage 0–100 per line',
    );
    expect([e1.line, e1.code]).toEqual([42, 'TRACE_FORMAT']);
    lines[41] = '101';
    const e2 = await failure(await folder('hot', { vm1: lines.join('\n') }));
    expect(e2.message).toMatch(/vm1, line 42: 101 % is out of range; expected 0–100$/);
    lines[41] = '';
    const e3 = await failure(await folder('gap', { vm1: lines.join('\n') }));
    expect(e3.message).toMatch(/vm1, line 42: empty line; expected one integer/);
    const e4 = await failure(await folder('negative', { vm1: `-3\n${day(() => 1)}` }));
    expect(e4.line).toBe(1);
  });

  it('names an empty file and a short one', async () => {
    const e1 = await failure(await folder('empty', { a: day(() => 1), z: '' }));
    expect(e1.message).toBe(
      `trace ${join(root, 'empty', 'z')}: the file is empty; expected 288 lines, one integer 0–100 each`,
    );
    const e2 = await failure(await folder('short', { a: '1\n2\n3\n' }));
    expect(e2.message).toMatch(/a: 3 values, expected 288/);
  });
});
