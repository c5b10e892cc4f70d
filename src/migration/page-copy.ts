/**
 * Copying a page between guest RAM (a SharedArrayBuffer) and a PAGES frame, where page data sits at any byte offset
 * (each entry has a 9-byte header). V8 copies to or from shared memory with relaxed atomic accesses: a word at a
 * time when the two sides are aligned alike, a byte at a time otherwise, which makes a 4 KiB page at an odd offset
 * 1.5–2.5× slower to copy than going through an aligned private buffer (shared ↔ bounce by words, bounce ↔ frame by
 * memmove). Measured in docs/migration.md ("How a page crosses between guest RAM and a frame").
 */

/** Bytes of alignment below which V8's relaxed copy falls back to single bytes (its atomic word). */
const WORD = 8;

/** True when copying between `a` and `b` goes a byte at a time: shared memory on either side, not aligned alike. */
export function copiesByteWise(a: Uint8Array, b: Uint8Array): boolean {
  return (
    (a.byteOffset - b.byteOffset) % WORD !== 0 &&
    (a.buffer instanceof SharedArrayBuffer || b.buffer instanceof SharedArrayBuffer)
  );
}

/** This thread's bounce buffer (one per module instance, so one per thread). */
let bounce = new Uint8Array(4096);

/**
 * Copies `data` (a page's bytes, at any offset of a frame) into `target` (a page of guest RAM, same length): through
 * an aligned bounce buffer when a direct copy would go a byte at a time, else directly. The bytes are the same.
 */
export function copyPageInto(data: Uint8Array, target: Uint8Array): void {
  if (!copiesByteWise(data, target)) {
    target.set(data);
    return;
  }
  if (bounce.length < data.length) bounce = new Uint8Array(data.length);
  const b = bounce.length === data.length ? bounce : bounce.subarray(0, data.length);
  b.set(data);
  target.set(b);
}
