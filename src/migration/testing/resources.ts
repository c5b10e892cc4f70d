/**
 * What a test makes and must not outlive it (destination harnesses, fake destinations, agents, sockets), in one
 * place: registered as it is made, disposed after each test by one afterEach. Every one is closed even when another's
 * close fails (the first failure is thrown after all have run), then the test guests (fixtures.ts): a failing test
 * leaks no worker thread, socket, port or guest into the next.
 */
import { afterEach, vi } from 'vitest';
import { destroyTestGuests } from './fixtures.js';

/** Something that ends with close() or destroy(), at once or by a promise. */
export type TestResource = { close(): unknown } | { destroy(): unknown };

/** Registers `x` for disposal after the current test and returns it, so that making and registering are one step. */
export type TrackResource = <T extends TestResource>(x: T) => T;

/**
 * Call once at the top of a test file: registers the afterEach that disposes what the returned function tracked.
 * Time is real again first: a close that waits for a timer would never end on a fake clock a test left running.
 * Then `first` (a file's own resets: mocks, patched constants), then the disposal.
 */
export function disposeAfterEach(first?: () => unknown): TrackResource {
  const live: TestResource[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await first?.();
    await disposeAll(live.splice(0));
  });
  return (x) => {
    live.push(x);
    return x;
  };
}

/** Closes every one of `resources` (all at once), then the test guests; throws the first failure, after all ran. */
export async function disposeAll(resources: TestResource[]): Promise<void> {
  const settled = await Promise.allSettled(
    resources.map(async (r) => ('close' in r ? await r.close() : await r.destroy())),
  );
  await destroyTestGuests();
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}
