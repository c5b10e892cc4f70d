import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError } from '../errors.js';
import { type ResultFs, writeResultFile } from './files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Real files, but the disk fills up after `room` bytes of any write. */
function fullDisk(room: number): ResultFs {
  return {
    mkdir,
    rename,
    rm,
    async writeFile(path, data) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
      if (bytes.length <= room) return writeFile(path, bytes);
      await writeFile(path, bytes.subarray(0, room));
      throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    },
  };
}

describe('writeResultFile', () => {
  it('writes the whole file (and its folder)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'livemig-files-'));
    dirs.push(d);
    await writeResultFile(join(d, 'a', 'b.json'), '{"x":1}\n');
    expect(readFileSync(join(d, 'a', 'b.json'), 'utf8')).toBe('{"x":1}\n');
    expect(readdirSync(join(d, 'a'))).toEqual(['b.json']);
  });

  it('on a full disk: DISK_FULL naming the path, the old file and its neighbours untouched, no partial file', async () => {
    const d = mkdtempSync(join(tmpdir(), 'livemig-files-'));
    dirs.push(d);
    const target = join(d, 'results.json');
    writeFileSync(target, 'previous results\n');
    writeFileSync(join(d, 'cells.csv'), 'a,b\n1,2\n');
    const err = await writeResultFile(target, 'x'.repeat(10_000), fullDisk(4096)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).code).toBe('DISK_FULL');
    expect((err as MigrationError).message).toMatch(/^disk full: cannot write .*results\.json \(ENOSPC\)/);
    expect((err as MigrationError).context).toMatchObject({ path: target, errno: 'ENOSPC' });
    expect(readFileSync(target, 'utf8')).toBe('previous results\n');
    expect(readdirSync(d).sort()).toEqual(['cells.csv', 'results.json']);
  });

  it('other errors pass through unchanged', async () => {
    const fs: ResultFs = {
      mkdir,
      rename,
      rm,
      writeFile: async () => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      },
    };
    await expect(writeResultFile('/nowhere/x.json', 'x', fs)).rejects.toMatchObject({ code: 'EACCES' });
  });
});
