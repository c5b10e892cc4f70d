/**
 * Hot-last with XBZRLE, once pre-copy has decided to switch over: one last pass while the guest still runs sends the
 * pages still owed (those the last sync listed and the held ones) that have a cached copy, as deltas, least-written first and hottest last,
 * and only those written again before the pause are left for the stop-and-copy — the hottest pages go as late as
 * possible, just before the pause, which is the point of sending hot pages last.
 *
 * Why: a held page's copy is the one sent early, so its delta at the stop-and-copy carries every change made since
 * (on a write-heavy guest about a quarter of a page), and hot-last's ordering lets pre-copy converge a round earlier
 * than address order, with more pages left. Sent in this pass, they cost the guest nothing: one short pass of deltas
 * at link rate (about 30 ms for 1000 pages of a write-heavy guest over 32 MiB/s). A page already written again at
 * its turn is skipped, as in a round. Without XBZRLE the pass would resend whole pages that are mostly written again
 * during it, so everything owed stays for the stop-and-copy (the switch-over decision counted it: docs/guide.md).
 */
import { sendPages } from './send-pages.js';
import type { SourceState } from './state.js';

/** What is still owed outside the next sync: the last sync's pages not held, and the held pages. */
export interface Owed {
  dirty: Uint32Array;
  held: Uint32Array;
}

/** The last live pass (hot-last + XBZRLE only); returns what is still owed outside the sync at the pause. */
export async function finalPass(s: SourceState, owed: Owed, kind: 'pass' | 'flush' = 'pass'): Promise<Owed> {
  if (!s.hotLast.enabled || s.encoder.cache === undefined) return owed;
  if (owed.dirty.length + owed.held.length === 0) return owed;
  const cache = s.encoder.cache;
  const held = s.hotLast.releaseAll();
  // Only pages with a cached copy (deltas) go in the pass: a page without one would go whole at link rate and keep
  // the guest running longer, dirtying more (a guest filling new memory, like gcc-cc1, has many); it waits for the
  // stop-and-copy, which sends it unlimited.
  const withCopy: number[] = [];
  const without: number[] = [];
  for (const p of mergeAscending(owed.dirty, held)) (cache.has(p) ? withCopy : without).push(p);
  const pages = s.hotLast.order(Uint32Array.from(withCopy));
  const before = s.conn.bytesSent;
  // A page already written again at its turn is skipped: the sync at the pause lists it (its copy stays cached).
  s.encoder.skipRedirtied = true;
  const redirtied = s.r.pages.redirtied;
  try {
    await sendPages(s, pages, false, true);
  } finally {
    s.encoder.skipRedirtied = false;
  }
  const bytes = s.conn.bytesSent - before;
  const skipped = s.r.pages.redirtied - redirtied;
  // The pass is the tail of the last round (the guest still runs): its bytes and pages count there.
  const last = s.r.perRound[s.r.perRound.length - 1];
  if (last) {
    last.bytes += bytes;
    last.pagesSent += pages.length - skipped;
  }
  s.event(
    `hot-last: ${kind === 'flush' ? 'flush right before the pause' : 'last pass before the pause'} sent ${pages.length - skipped} of ${pages.length} owed pages with a ` +
      `cached copy (${held.length} held; ${bytes} bytes; ${skipped} written again first and ${without.length} ` +
      'without a copy: left for the stop-and-copy)',
  );
  return { dirty: Uint32Array.from(without), held: new Uint32Array(0) };
}

function mergeAscending(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out.sort();
}
