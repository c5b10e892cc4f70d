/**
 * Hot-last with XBZRLE, once pre-copy has decided to switch over: the held pages go once more, as deltas, while the
 * guest still runs, hottest last, and only those written again before the pause are left for the stop-and-copy.
 *
 * Why: a held page's copy is the one sent early, so its delta at the stop-and-copy carries every change made since
 * (on a write-heavy guest about a quarter of a page), where XBZRLE alone resends the page each round and only the
 * last round's changes remain. Sending the held pages just before the pause costs one short live pass (deltas at
 * link rate: about 30 ms for 1000 held pages of a write-heavy guest over 32 MiB/s) and keeps what hot-last saved in
 * the rounds before. Without XBZRLE the pass would resend whole pages that are mostly written again during it, so
 * the held pages stay for the stop-and-copy (the switch-over decision counted them: docs/guide.md).
 */
import { sendPages } from './send-pages.js';
import type { SourceState } from './state.js';

/** Sends the held pages before the pause (XBZRLE only); returns the pages still owed outside the next sync. */
export async function flushHeld(s: SourceState, held: Uint32Array): Promise<Uint32Array> {
  if (held.length === 0 || s.encoder.cache === undefined) return held;
  const pages = s.hotLast.releaseAll();
  const before = s.conn.bytesSent;
  // A page already written again at its turn is skipped: the sync at the pause lists it (its copy stays cached).
  s.encoder.skipRedirtied = true;
  const redirtied = s.r.pages.redirtied;
  try {
    await sendPages(s, s.hotLast.order(pages), false, true);
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
    `hot-last: ${pages.length} held pages sent before the pause (${bytes} bytes, ` +
      `${skipped} written again first: left for the stop-and-copy)`,
  );
  return new Uint32Array(0);
}
