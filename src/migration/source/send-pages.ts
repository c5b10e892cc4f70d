/** Sending a list of pages through the encoder, yielding to the socket as frames fill (every strategy uses it). */
import type { SourceState } from './state.js';

/** Pages checked at once for zero in the first round (a power of two). */
const ZERO_RUN_PAGES = 32;

/** Sends the given pages (ascending), yielding to the socket as frames fill. */
export async function sendPages(
  s: SourceState,
  pages: ArrayLike<number>,
  fresh: boolean,
  allowXbzrle: boolean,
): Promise<void> {
  // Parallel channels: each channel's thread encodes its share, then a sync point (multifd/source-channels.ts).
  if (s.multifd) {
    // Round 1: the runs the dirty log knows were never written go as zero pages here, unread; the channels' threads
    // compare the rest (their caches are empty in a fresh round: nothing to invalidate).
    const share = fresh ? withoutNeverWritten(s, pages, ZERO_RUN_PAGES) : pages;
    return s.multifd.sendPages(s.conn, share, fresh, allowXbzrle);
  }
  const run = ZERO_RUN_PAGES;
  const encoder = s.encoder;
  // The guest this migration paused writes nothing until the migration has ended (it resumes here only after a
  // failure, when frames still queued can at worst fail their CRC check at the destination, which has discarded
  // the guest already): its pages can go as views of RAM, without a copy.
  encoder.pagesStable = s.pausedAt > 0 && !s.guest.running;
  try {
    await sendEach(s, pages, fresh, allowXbzrle, run);
  } finally {
    encoder.pagesStable = false;
  }
}

async function sendEach(
  s: SourceState,
  pages: ArrayLike<number>,
  fresh: boolean,
  allowXbzrle: boolean,
  run: number,
): Promise<void> {
  const encoder = s.encoder;
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i]!;
    // First round: skip runs of zero pages. Pages the dirty log knows were never written are zero without reading
    // them (no page fault on never-touched RAM); else one native compare per run reads the live pages. Either way
    // a vCPU that writes one afterwards sets its dirty bit, so it is sent in the next round.
    if (fresh && runStartsAt(pages, i, run) && (s.guest.dirtyLog.neverWritten(p, run) || zeroRun(s, p))) {
      s.r.pages.zero += run;
      const cache = encoder.cache;
      if (cache) for (let q = p; q < p + run; q++) cache.invalidate(q);
      i += run - 1;
      continue;
    }
    encoder.encode(p, fresh, allowXbzrle);
    if ((i & 255) === 255) {
      s.checkAbort();
      await s.frames.pending;
      s.emit();
    }
  }
  await s.frames.flush();
}

/** pages[i] starts an aligned run of `run` consecutive pages (run a power of two), all of them in `pages`. */
function runStartsAt(pages: ArrayLike<number>, i: number, run: number): boolean {
  const p = pages[i]!;
  return (p & (run - 1)) === 0 && i + run <= pages.length && pages[i + run - 1] === p + run - 1;
}

/**
 * `pages` less the aligned runs of `run` consecutive pages the dirty log knows were never written (counted as zero
 * pages in the report): they hold zeros and the destination starts with zeros.
 */
export function withoutNeverWritten(
  s: Pick<SourceState, 'guest' | 'r'>,
  pages: ArrayLike<number>,
  run: number,
): ArrayLike<number> {
  const log = s.guest.dirtyLog;
  const out = new Uint32Array(pages.length);
  let n = 0;
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i]!;
    if (runStartsAt(pages, i, run) && log.neverWritten(p, run)) {
      s.r.pages.zero += run;
      i += run - 1;
      continue;
    }
    out[n++] = p;
  }
  return n === pages.length ? pages : out.subarray(0, n);
}

/** Runs of zeros to compare with, one per run size (page size), shared by every migration (read-only). */
const zeroRuns = new Map<number, Uint8Array>();

/** True when the ZERO_RUN_PAGES pages from `p` (aligned, inside one RAM block) are all zero. */
function zeroRun(s: SourceState, p: number): boolean {
  const ram = s.guest.ram;
  const b = Math.floor(p / ram.pagesPerBlock);
  if (Math.floor((p + ZERO_RUN_PAGES - 1) / ram.pagesPerBlock) !== b) return false;
  const block = ram.blocks[b]!;
  const bytes = ZERO_RUN_PAGES * s.pageSize;
  const offset = (p - block.firstPage) * s.pageSize;
  let zeros = zeroRuns.get(bytes);
  if (zeros === undefined) {
    zeros = new Uint8Array(bytes);
    zeroRuns.set(bytes, zeros);
  }
  return Buffer.compare(new Uint8Array(block.buffer, offset, bytes), zeros) === 0;
}

/** Every page number of the guest, ascending. */
export function allPages(pageCount: number): Uint32Array {
  const pages = new Uint32Array(pageCount);
  for (let i = 0; i < pages.length; i++) pages[i] = i;
  return pages;
}
