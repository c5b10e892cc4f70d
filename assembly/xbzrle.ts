// AssemblyScript: the XBZRLE encoder of src/codec/xbzrle.ts with WebAssembly SIMD run scanning.
// Built by `npm run build:wasm` into src/codec/xbzrle-wasm.generated.ts; the format and the overflow rule
// are documented in src/codec/xbzrle.ts and must stay byte-identical to the TypeScript encoder there.
//
// The memory is imported (the caller sizes it: a scratch instance, or a page arena). The caller places the
// previous page at `prev` and the current page at `cur` (copying them in unless they already live in this
// memory), calls encode(prev, cur, n, limit, out) and reads the encoding at `out`.

const MAX_RUN: i32 = 0x3fff;

// First offset >= i where the pages differ, or n: 128 then 64 bytes per step while equal, then 16, then bytes.
// Equality of a block is one any_true over OR-ed XORs (PTEST on x86): cheaper than all_true over AND-ed eqs.
function unchangedEnd(prev: usize, cur: usize, i: i32, n: i32): i32 {
  while (i + 128 <= n) {
    const p = prev + <usize>i;
    const c = cur + <usize>i;
    const x0 = v128.or(v128.xor(v128.load(p), v128.load(c)), v128.xor(v128.load(p, 16), v128.load(c, 16)));
    const x1 = v128.or(
      v128.xor(v128.load(p, 32), v128.load(c, 32)),
      v128.xor(v128.load(p, 48), v128.load(c, 48)),
    );
    const x2 = v128.or(
      v128.xor(v128.load(p, 64), v128.load(c, 64)),
      v128.xor(v128.load(p, 80), v128.load(c, 80)),
    );
    const x3 = v128.or(
      v128.xor(v128.load(p, 96), v128.load(c, 96)),
      v128.xor(v128.load(p, 112), v128.load(c, 112)),
    );
    if (v128.any_true(v128.or(v128.or(x0, x1), v128.or(x2, x3)))) break;
    i += 128;
  }
  while (i + 64 <= n) {
    const p = prev + <usize>i;
    const c = cur + <usize>i;
    const x0 = v128.or(v128.xor(v128.load(p), v128.load(c)), v128.xor(v128.load(p, 16), v128.load(c, 16)));
    const x1 = v128.or(
      v128.xor(v128.load(p, 32), v128.load(c, 32)),
      v128.xor(v128.load(p, 48), v128.load(c, 48)),
    );
    if (v128.any_true(v128.or(x0, x1))) break;
    i += 64;
  }
  while (i + 16 <= n) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(prev + <usize>i), v128.load(cur + <usize>i)));
    if (m !== 0xffff) return i + ctz(~m);
    i += 16;
  }
  while (i < n && load<u8>(prev + <usize>i) === load<u8>(cur + <usize>i)) i++;
  return i;
}

// First offset >= i where the pages are equal, or n.
function changedEnd(prev: usize, cur: usize, i: i32, n: i32): i32 {
  while (i + 16 <= n) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(prev + <usize>i), v128.load(cur + <usize>i)));
    if (m !== 0) return i + ctz(m);
    i += 16;
  }
  while (i < n && load<u8>(prev + <usize>i) !== load<u8>(cur + <usize>i)) i++;
  return i;
}

function putUleb(out: usize, d: i32, v: i32): i32 {
  if (v < 0x80) {
    store<u8>(out + <usize>d, v);
    return d + 1;
  }
  store<u8>(out + <usize>d, (v & 0x7f) | 0x80);
  store<u8>(out + <usize>d + 1, v >>> 7);
  return d + 2;
}

/** Encoded length, or -1 on overflow (QEMU's rule: see src/codec/xbzrle.ts). n <= 16383. */
export function encode(prev: usize, cur: usize, n: i32, limit: i32, out: usize): i32 {
  if (n > MAX_RUN) return -2;
  let d = 0;
  let i = 0;
  while (i < n) {
    if (d + 2 > limit) return -1;
    const z = unchangedEnd(prev, cur, i, n);
    if (z === n) return d;
    d = putUleb(out, d, z - i);
    i = z;
    if (d + 2 > limit) return -1;
    const e = changedEnd(prev, cur, i, n);
    const len = e - i;
    if (d + (len < 0x80 ? 1 : 2) + len > limit) return -1;
    d = putUleb(out, d, len);
    memory.copy(out + <usize>d, cur + <usize>i, <usize>len);
    d += len;
    i = e;
  }
  return d;
}
