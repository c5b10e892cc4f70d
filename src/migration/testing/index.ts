/**
 * Driving the migration engine in one process, for the engine's own tests (not part of the package): an in-memory
 * link (link-pair.ts), scripted peers (fake-destination.ts, fake-source.ts, script.ts), a fake clock for
 * timeouts (clock.ts), small guests (fixtures.ts) and the disposal of what a test made (resources.ts).
 * docs/reliability.md, "Testing a protocol state without processes", says how they fit.
 */
export { expireWhenWaiting, useFakeClock } from './clock.js';
export { type DestinationStep, FakeDestination, type FakeDestinationOptions } from './fake-destination.js';
export {
  DestinationHarness,
  FakeSource,
  type FakeSourceOptions,
  type FakeSourceResult,
  type SourceStep,
} from './fake-source.js';
export {
  destroyTestGuests,
  differingPages,
  ramImage,
  SMALL_GUEST,
  sourceRun,
  testGuest,
} from './fixtures.js';
export { createLinkPair, LinkEnd, type LinkPairOptions } from './link-pair.js';
export { disposeAfterEach, disposeAll, type TestResource, type TrackResource } from './resources.js';
export { corruptFrame, type PeerAction, Script, type ScriptLine } from './script.js';
export { expectSwitchoverSteps } from './switchover-check.js';
