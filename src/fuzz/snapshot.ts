/**
 * The snapshot file parser (src/snapshot) under hostile input: a small valid snapshot, mutated; half the mutants get
 * their prefix, header and table checksums recomputed (`resealSnapshot`), so the schema, layout and page checks
 * behind the checksums see the damage too. The contract: a snapshot comes back, or SNAPSHOT_CORRUPT /
 * SNAPSHOT_FORMAT (a MigrationError) — nothing else, and quickly.
 */
import { crc32c } from '@node-rs/crc32';
import type { Rng } from '../codec/fuzz.js';
import { resolveConfig } from '../guest/config.js';
import { buildSnapshot, parseSnapshot, type SnapshotLayout } from '../snapshot/index.js';

/** A 16-page, 2-vCPU snapshot: some pages data, some zero (holes). Built once. */
let valid: { bytes: Buffer; layout: SnapshotLayout } | undefined;
export function validSnapshot(): { bytes: Buffer; layout: SnapshotLayout } {
  if (valid) return valid;
  const config = resolveConfig({ ramBytes: 16 * 4096, vcpus: 2, seed: 3, workload: { name: 'gap' } });
  const vcpus = [0, 1].map((index) => ({
    index,
    step: 100 + index,
    rng: [1, 2, 3, 4 + index],
    registers: { cursor: index, alloc: 0, writes: 100 + index, checksum: 0 },
  }));
  const bytes = buildSnapshot({ config, vcpus }, (p) => new Uint8Array(4096).fill(p % 3 === 0 ? 0 : p));
  valid = { bytes, layout: parseSnapshot(bytes).header.layout };
  return valid;
}

/** Recomputes the checksums of a (mutated) snapshot where its prefix still says where things are. */
export function resealSnapshot(b: Buffer, layout: SnapshotLayout): Buffer {
  if (b.length < 64) return b;
  const headerBytes = b.readUInt32LE(20);
  if (64 + headerBytes <= b.length) b.writeUInt32LE(crc32c(b.subarray(64, 64 + headerBytes)), 24);
  const tablesEnd = layout.crcOffset + layout.pageCount * 4;
  if (tablesEnd <= b.length) b.writeUInt32LE(crc32c(b.subarray(layout.bitmapOffset, tablesEnd)), 28);
  b.writeUInt32LE(crc32c(b.subarray(0, 32)), 32);
  return b;
}

export function snapshotTarget(mutate: (rng: Rng, valid: Uint8Array) => Buffer) {
  return {
    name: 'snapshot file (parseSnapshot)',
    run: (rng: Rng): void => {
      const { bytes, layout } = validSnapshot();
      const k = rng.int(10);
      let input: Buffer;
      if (k === 0) input = Buffer.from(rng.bytes(rng.int(300)));
      else if (k < 5) input = mutate(rng, bytes);
      else {
        // Mutations aimed at the header and tables, resealed so they get past the checksums.
        const b = Buffer.from(bytes);
        const end = layout.crcOffset + layout.pageCount * 4;
        for (let n = 1 + rng.int(4); n > 0; n--) {
          const at =
            rng.int(2) === 0
              ? 64 + rng.int(b.readUInt32LE(20))
              : layout.bitmapOffset + rng.int(end - layout.bitmapOffset);
          b[at] = rng.int(256);
        }
        input = resealSnapshot(rng.int(4) === 0 ? mutate(rng, b) : b, layout);
      }
      parseSnapshot(input);
    },
  };
}
