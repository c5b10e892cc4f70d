/**
 * The source's bandwidth limit (`--max-bandwidth`): a token bucket over a monotonic clock. Tokens are bytes;
 * the bucket refills at the rate and holds at most `burst` bytes, so short bursts pass at line speed while the
 * average holds the limit: over any interval of T ms at most burst + rate × T / 1000 bytes go out.
 *
 * take() never refuses: a send larger than the tokens on hand puts the bucket in debt and returns how long to
 * wait, so frames bigger than the burst still pass, just later. The clock and the sleep are injectable, so tests
 * run on a fake clock without timing anything.
 */
import { MigrationError, UsageError } from '../errors.js';

/**
 * Waits `ms` milliseconds, or less when `signal` aborts (setTimeout by default; tests pass a fake that advances
 * their clock).
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** An aborted wait ends at once: a 1 B/s limit must not keep a cancelled migration (or the agent) alive for days. */
const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * The shortest sleep consume() takes. A send that must wait a little (a 64 KiB frame at 32 MiB/s waits 2 ms) sleeps
 * this long instead, and the tokens that come back meanwhile let the next sends go without a sleep of their own: one
 * timer per few frames, not one per frame. The bound holds (nothing is sent that the bucket has not paid for); the
 * cost is that a send may leave up to this much later than it could have.
 */
export const MIN_SLEEP_MS = 8;

/** 10 ms worth of the rate, at least 256 KiB (one PAGES frame must fit). */
export function defaultBurst(bytesPerSecond: number): number {
  return Math.max(256 * 1024, bytesPerSecond / 100);
}

function checkRate(bytesPerSecond: number): void {
  if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond >= 0)) {
    throw new UsageError(
      `max-bandwidth: ${bytesPerSecond} is not a rate in bytes per second; use a number >= 0 (0 = unlimited)`,
      'max-bandwidth',
    );
  }
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private burstBytes: number;
  /** A burst given by the caller stays across setRate(); the default one follows the rate. */
  private readonly fixedBurst: boolean;
  /** Sends waiting in consume() now, since when some send has been waiting, and the waits that ended (ms). */
  private waiting = 0;
  private waitingSince = 0;
  private heldBefore = 0;

  /**
   * @param bytesPerSecond the limit; 0 = unlimited.
   * @param burstBytes the most that may go out at once after an idle period (default: defaultBurst(rate)).
   * @param now a monotonic clock in ms (performance.now).
   * @param sleep how consume() waits.
   */
  constructor(
    private bytesPerSecond: number,
    burstBytes?: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: Sleep = realSleep,
  ) {
    checkRate(bytesPerSecond);
    if (burstBytes !== undefined && !(Number.isFinite(burstBytes) && burstBytes > 0)) {
      throw new UsageError(`burst: ${burstBytes} is not a positive number of bytes`, 'burst');
    }
    this.fixedBurst = burstBytes !== undefined;
    this.burstBytes = burstBytes ?? defaultBurst(bytesPerSecond);
    this.tokens = this.burstBytes; // start full: the first burst goes at once
    this.last = this.now();
  }

  /** Bytes per second; 0 = unlimited. */
  get rate(): number {
    return this.bytesPerSecond;
  }

  /** Capacity of the bucket in bytes. */
  get burst(): number {
    return this.burstBytes;
  }

  /** Changes the limit from now on. Debt already taken is repaid at the new rate; 0 lifts the limit. */
  setRate(bytesPerSecond: number): void {
    checkRate(bytesPerSecond);
    const wasUnlimited = this.bytesPerSecond === 0;
    this.refill();
    this.bytesPerSecond = bytesPerSecond;
    if (!this.fixedBurst) this.burstBytes = defaultBurst(bytesPerSecond);
    // An unlimited bucket never drained, so it starts the new limit full.
    this.tokens = wasUnlimited ? this.burstBytes : Math.min(this.tokens, this.burstBytes);
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last);
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.bytesPerSecond) / 1000);
    this.last = t;
  }

  /** Takes `bytes` (going into debt if needed) and returns how many ms to wait before sending them; 0 = now. */
  take(bytes: number): number {
    if (!(Number.isFinite(bytes) && bytes >= 0)) {
      throw new MigrationError('BAD_ARGUMENT', `token bucket: cannot take ${bytes} bytes`, { bytes });
    }
    if (this.bytesPerSecond === 0) return 0;
    this.refill();
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }

  /**
   * Milliseconds during which at least one send waited in consume(), on the bucket's clock (the waits as they
   * really lasted, not as take() asked). A round's time less this is what its sends cost without the limit: the
   * source's estimate of its unlimited rate (QEMU's avail-switchover-bandwidth, which QEMU leaves to the user).
   */
  get heldMs(): number {
    return this.heldBefore + (this.waiting > 0 ? Math.max(0, this.now() - this.waitingSince) : 0);
  }

  /** Takes `bytes` and resolves when they may be sent, or at once when `signal` aborts (the caller checks why). */
  async consume(bytes: number, signal?: AbortSignal): Promise<void> {
    let wait = this.take(bytes);
    if (!(wait > 0) || signal?.aborted) return;
    // At least MIN_SLEEP_MS, but never past the moment the bucket would be full again (tokens beyond it are lost).
    if (wait < MIN_SLEEP_MS)
      wait = Math.min(MIN_SLEEP_MS, wait + (this.burstBytes * 1000) / this.bytesPerSecond);
    // Overlapping waits (multifd channels share the bucket) count once.
    if (this.waiting++ === 0) this.waitingSince = this.now();
    try {
      await this.sleep(wait, signal);
    } finally {
      if (--this.waiting === 0) this.heldBefore += Math.max(0, this.now() - this.waitingSince);
    }
  }
}
