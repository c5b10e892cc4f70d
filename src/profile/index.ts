/**
 * Guest profiles: the working-set curve W(t), the hot set, zero pages and XBZRLE's compression on resent pages,
 * measured on the guest itself (`livemig profile`); what the pre-copy model (`livemig predict`) is fed. docs/model.md.
 */
export { type CacheHit, measureCacheHits } from './cache-hit.js';
export { cacheRetention, measuredCacheHit, unchangedSinceSent, workingSetAt, xbzrleAt } from './curve.js';
export { readProfile, writeProfile } from './io.js';
export { type DirtyLogClient, type ProfileOptions, profileAgentGuest, profileGuest } from './profile.js';
export { type GuestProfile, PROFILE_VERSION, profileSchema } from './schema.js';
export { byPage, distinctPagesPerWindow, hotSet, logSpacedWindows, type TickLog } from './working-set.js';
