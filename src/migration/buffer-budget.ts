/**
 * One budget of bytes for the frames being assembled across all of an agent's incoming connections
 * (docs/security.md, "Resource limits"). A connection reserves a large frame's whole size before it buffers a byte
 * of it; if the budget is spent it stops reading (its socket is paused, so TCP slows the sender) and waits its turn.
 *
 * Why this cannot deadlock a legitimate migration: a connection holds a reservation only while it assembles one
 * frame, and it never waits while holding one (it waits only before its next frame). So every holder is either
 * receiving its frame (and releases it when complete) or stalled, and a stalled peer is dropped by the idle or
 * HELLO timeout. Waiters are served in order, and a frame larger than the whole budget is admitted once the budget
 * is empty, so every frame eventually fits.
 */
export class BufferBudget {
  private used = 0;
  private readonly waiters: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new RangeError(`buffer budget of ${limit} bytes`);
  }

  /** Bytes reserved now. */
  get inUse(): number {
    return this.used;
  }

  /** Connections waiting for room. */
  get waiting(): number {
    return this.waiters.length;
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  /** Reserves `bytes` at once if there is room and nobody waits ahead; false otherwise. */
  tryAcquire(bytes: number): boolean {
    if (this.waiters.length > 0 || !this.fits(bytes)) return false;
    this.used += bytes;
    return true;
  }

  /** Calls `grant` once `bytes` are reserved for the caller (in arrival order). Returns a cancel function. */
  wait(bytes: number, grant: () => void): () => void {
    const w = { bytes, grant };
    this.waiters.push(w);
    this.pump();
    return () => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) {
        this.waiters.splice(i, 1);
        this.pump();
      }
    };
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.pump();
  }

  private pump(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const w = this.waiters.shift()!;
      this.used += w.bytes;
      w.grant();
    }
  }
}
