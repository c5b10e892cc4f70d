/**
 * The source's bandwidth limit (`--max-bandwidth`): a token bucket over a monotonic clock. Tokens are bytes;
 * the bucket refills at the rate and holds at most `burst` bytes, so short bursts pass at line speed while the
 * average holds the limit.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private burst: number;

  constructor(
    private bytesPerSecond: number,
    burstBytes?: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.burst = burstBytes ?? defaultBurst(bytesPerSecond);
    this.tokens = this.burst;
    this.last = this.now();
  }

  get rate(): number {
    return this.bytesPerSecond;
  }

  setRate(bytesPerSecond: number): void {
    this.refill();
    this.bytesPerSecond = bytesPerSecond;
    this.burst = defaultBurst(bytesPerSecond);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.bytesPerSecond) / 1000);
    this.last = t;
  }

  /** Takes `bytes` (going into debt if needed) and returns how many ms to wait before sending them; 0 = now. */
  take(bytes: number): number {
    if (this.bytesPerSecond <= 0) return 0;
    this.refill();
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }

  async consume(bytes: number): Promise<void> {
    const wait = this.take(bytes);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** 10 ms worth of the rate, at least 256 KiB (one PAGES frame must fit). */
function defaultBurst(bytesPerSecond: number): number {
  return Math.max(256 * 1024, bytesPerSecond / 100);
}
