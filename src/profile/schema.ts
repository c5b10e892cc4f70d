/**
 * The guest profile file (`livemig profile --out FILE`, read by `livemig predict --profile FILE`): what the pre-copy
 * model needs to know about a guest, measured on the guest itself. Versioned; validated with zod on every read.
 */
import { z } from 'zod';

export const PROFILE_VERSION = 1;

const count = z.number().int().min(0);
const fraction = z.number().min(0).max(1);

export const profileSchema = z.strictObject({
  kind: z.literal('livemig-profile'),
  version: z.literal(PROFILE_VERSION),
  /** What was profiled: the workload's name (or trace file) and, for a running guest, the agent and guest id. */
  source: z.strictObject({
    workload: z.string(),
    agent: z.string().optional(),
    guest: z.string().optional(),
  }),
  measuredAt: z.string(),
  pageSize: z.number().int().positive(),
  /** Pages of guest RAM. */
  ramPages: count,
  /** How long the dirty log was watched, and the mean step between syncs, ms. */
  durationMs: z.number().positive(),
  tickMs: z.number().positive(),
  /**
   * The working-set curve: mean distinct pages dirtied in a window of `ms` milliseconds, log-spaced from one tick to
   * the whole run, ascending in ms (and non-decreasing in pages).
   */
  workingSet: z.array(z.strictObject({ ms: z.number().positive(), pages: z.number().min(0) })).min(1),
  /** Distinct pages dirtied at least once during the run, and dirty-page events per second (pages × ticks / s). */
  pagesWritten: count,
  dirtyPagesPerSec: z.number().min(0),
  /** The hot set: the fewest pages that take `share` of the dirty-page events (a page dirty in many ticks is hot). */
  hotSet: z.array(z.strictObject({ share: fraction, pages: count })),
  /** Fraction of RAM pages that are all zero, the mean of the watch's start and end (they do not travel in round 1). */
  zeroFraction: fraction.nullable(),
  /**
   * The zero fraction at the start of the watch alone: a guest that fills memory (a trace allocating) has fewer
   * non-zero pages when a migration right after the watch starts than the mean says. Absent in older profiles.
   */
  zeroFractionStart: fraction.nullable().optional(),
  /**
   * Bytes a migration carries besides RAM before round 1 (a trace guest's recording, sent at the link's rate during
   * the handshake). Absent: none.
   */
  carriedBytes: z.number().int().min(0).optional(),
  /**
   * XBZRLE on resent pages: a sample of dirty pages copied at one sync and encoded against that copy at a later one
   * (`lagMs` later), as a cache hit would be. `unchanged`: identical again (skipped), `overflow`: delta larger than
   * a page (sent whole), `ratio`: mean encoded bytes ÷ page bytes of the others. Empty when contents were not read.
   */
  /**
   * How long a guest like this one takes to start on a destination (vCPU threads up, workload state such as a
   * trace loaded), ms; the switch-over waits for it when pre-copy ends sooner. Null when not measured (a guest on
   * an agent).
   */
  incomingMs: z.number().min(0).nullable().optional(),
  /**
   * The XBZRLE cache's hit rate on resent pages after round 1, simulated on the guest's own non-zero pages with the
   * engine's set index, per geometry (sets × ways); absent when contents were not read (cache-hit.ts).
   */
  cacheHit: z
    .array(
      z.strictObject({ sets: z.number().int().positive(), ways: z.number().int().positive(), hit: fraction }),
    )
    .optional(),
  xbzrle: z.array(
    z.strictObject({
      lagMs: z.number().positive(),
      pages: count,
      unchanged: fraction,
      overflow: fraction,
      ratio: fraction,
    }),
  ),
});

export type GuestProfile = z.infer<typeof profileSchema>;
