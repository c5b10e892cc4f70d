/**
 * Which channel a page travels on. A page always takes the same channel (its address decides), so each channel's
 * XBZRLE cache holds exactly what that channel delivered and the destination, which applies a channel's frames in
 * order, holds the same. Runs of SHARD_PAGES pages (128 KiB of 4 KiB pages) go to one channel: the first round's
 * zero-run check and the sequential reads stay whole, and the channels still get equal shares of any region.
 */
export const SHARD_PAGES = 32;

export function channelOf(page: number, channels: number): number {
  return Math.floor(page / SHARD_PAGES) % channels;
}

/** Splits an ascending page list into one ascending list per channel. */
export function shardPages(pages: ArrayLike<number>, channels: number): Uint32Array[] {
  const counts = new Uint32Array(channels);
  for (let i = 0; i < pages.length; i++) counts[channelOf(pages[i]!, channels)]!++;
  const out = Array.from(counts, (n) => new Uint32Array(n));
  const at = new Uint32Array(channels);
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i]!;
    const c = channelOf(p, channels);
    out[c]![at[c]!++] = p;
  }
  return out;
}
