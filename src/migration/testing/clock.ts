/**
 * Timeouts in scripted-peer tests without waiting for them: with Vitest's fake timers installed (setTimeout and
 * clearTimeout only, advancing with real time), once the script reaches a silent step the clock is jumped, again
 * and again, while anything waits on a timer. What fires is the engine's own timeout for that state (the other
 * side waits for nothing else then), so the outcome does not depend on how loaded the machine is.
 */
import { vi } from 'vitest';

/**
 * Installs the fake timers `expireWhenWaiting` drives; with `performance`, `performance.now()` follows the fake
 * clock too (for deadlines the engine computes from it, such as reconcileTimeoutMs).
 */
export function useFakeClock(options: { performance?: boolean } = {}): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', ...(options.performance ? (['performance'] as const) : [])],
    shouldAdvanceTime: true,
  });
}

/** From `reached` on, jumps the fake clock by `ms` whenever a timer is pending, until real timers are back. */
export function expireWhenWaiting(reached: Promise<unknown>, ms: number): void {
  void reached.then(async () => {
    while (vi.isFakeTimers()) {
      if (vi.getTimerCount() > 0) vi.advanceTimersByTime(ms);
      await new Promise((r) => setImmediate(r));
    }
  });
}
