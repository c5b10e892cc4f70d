/**
 * Result files on a full disk, for real: a 64 KiB tmpfs. Writing a report that does not fit fails with DISK_FULL
 * naming the path, leaves the files already there as they were and no half-written file; `livemig run --out` on
 * that disk still prints its report and exits 1 with one clear line. Skipped, with the reason, unless root can
 * mount a tmpfs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationError } from '../src/errors.js';
import { writeJson } from '../src/report/index.js';
import { runCli } from './helpers.js';

const mnt = mkdtempSync(join(tmpdir(), 'livemig-full-'));

function mountTiny(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a tmpfs needs CAP_SYS_ADMIN';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'livemig-full', mnt], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs (${(err as Error).message.split('\n')[0]})`;
  }
}

const reason = mountTiny();
if (reason) console.warn(`disk-full tests skipped: ${reason}`);

afterAll(() => {
  if (!reason) execFileSync('umount', [mnt], { stdio: 'pipe' });
  rmSync(mnt, { recursive: true, force: true });
});

/** Fills the disk to the last byte with one file, returns its content. */
function fill(name: string): Buffer {
  const block = Buffer.alloc(4096, 0x61);
  const parts: Buffer[] = [];
  try {
    for (;;) {
      writeFileSync(join(mnt, name), block, { flag: 'a' });
      parts.push(block);
    }
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  }
  return readFileSync(join(mnt, name));
}

describe.skipIf(reason !== undefined)('result files on a full disk (64 KiB tmpfs)', () => {
  it('a report that does not fit: DISK_FULL with the path; earlier files intact, nothing half-written', async () => {
    writeFileSync(join(mnt, 'earlier.json'), '{"kept":true}\n');
    const big = { rows: Array.from({ length: 20_000 }, (_, i) => ({ i, text: 'migration round' })) };
    const err = await writeJson(join(mnt, 'results.json'), big).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('DISK_FULL');
    expect((err as MigrationError).message).toContain(`disk full: cannot write ${join(mnt, 'results.json')}`);
    expect(readdirSync(mnt)).toEqual(['earlier.json']);
    expect(readFileSync(join(mnt, 'earlier.json'), 'utf8')).toBe('{"kept":true}\n');
  });

  it('livemig run --out on a full disk prints the report, then fails with [DISK_FULL] and the path', () => {
    const filler = fill('filler.bin');
    const r = runCli([
      'run',
      '--ram',
      '8MiB',
      '--workload',
      'idle',
      '--warmup',
      '0s',
      '--json',
      '--out',
      join(mnt, 'run'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `livemig: [DISK_FULL] disk full: cannot write ${join(mnt, 'run', 'report.json')}`,
    );
    // The report was not lost: it is on stdout.
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'completed', verified: true });
    expect(readFileSync(join(mnt, 'filler.bin')).equals(filler)).toBe(true);
    // The folder itself may or may not have fitted; no file did.
    expect(
      readdirSync(mnt)
        .filter((f) => f !== 'run')
        .sort(),
    ).toEqual(['earlier.json', 'filler.bin']);
    if (readdirSync(mnt).includes('run')) expect(readdirSync(join(mnt, 'run'))).toEqual([]);
  }, 120_000);
});
