/**
 * PAGES frames of the live rounds under --max-bandwidth: at most about LIVE_FRAME_MS of the limit each.
 *
 * Why: the destination applies a frame only once the whole frame has arrived, and the last frame of the round
 * before the switch-over arrives just before the pause. With 1 MiB frames at 32 MiB/s that frame holds up to
 * 31 ms of pages — about 2000 XBZRLE deltas of a few hundred bytes — and the destination was still applying them
 * (its page sink's `drainMs`) 5–8 ms into the downtime (docs/engines.md). Frames of 2 ms of the limit keep that
 * backlog to a few hundred pages. The stop-and-copy goes unlimited and in full-size frames again.
 */

/** Link time of one live frame at the bandwidth limit. */
export const LIVE_FRAME_MS = 2;
/** No smaller than the smallest frame limit an option allows. */
const MIN_FRAME_BYTES = 64 * 1024;

/** The payload bound of a live round's frames: `full` without a bandwidth limit, else LIVE_FRAME_MS of it. */
export function liveFramePayload(maxBandwidth: number, full: number, pageSize: number): number {
  if (maxBandwidth <= 0) return full;
  const floor = Math.max(MIN_FRAME_BYTES, 2 * pageSize + 1024); // room for whole pages and their headers
  return Math.min(full, Math.max(floor, Math.round((maxBandwidth * LIVE_FRAME_MS) / 1000)));
}
