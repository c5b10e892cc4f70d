/** Messages between a multifd channel's thread and the main thread, on the source and on the destination. */
import type { CompressMethod, VerifyMethod } from '../options.js';

/** Source: what a channel thread needs to encode its share of the guest's pages. */
export interface EncoderInit {
  blocks: SharedArrayBuffer[];
  pagesPerBlock: number;
  pageSize: number;
  /** The source's page ledger (shared): each channel writes the CRCs of the pages it sends. */
  ledger: SharedArrayBuffer;
  /** The ledger digest's running sums (shared, digest.ts): kept with every CRC a channel writes. */
  ledgerSums?: SharedArrayBuffer;
  compress: CompressMethod;
  verify: VerifyMethod;
  /** This channel's XBZRLE cache (0 = no XBZRLE), and its associativity. */
  cacheBytes: number;
  cacheWays: number;
  /** Largest PAGES payload (the destination's limit and --frame-payload). */
  maxPayload: number;
}

/** Source, main → channel thread. */
export type EncoderRequest =
  | { kind: 'pages'; pages: Uint32Array; fresh: boolean; allowXbzrle: boolean }
  /** Seal the frame being filled; answer `synced` once every frame before it was posted. */
  | { kind: 'sync'; seq: number }
  /** A frame was written to the socket: one more may be in flight; its buffer comes back for the next frame. */
  | { kind: 'written'; buffer: ArrayBuffer };

/** Counters a channel thread adds to the report at each sync point. */
export interface EncoderCounters {
  pages: { zero: number; raw: number; xbzrle: number; rle: number; compressed: number; skipped: number };
  xbzrle: { encodedBytes: number; pageBytes: number; overflows: number; hits: number; misses: number };
}

/** Source, channel thread → main. */
export type EncoderReply =
  /** The thread has loaded and allocated what it needs: pages may come. */
  | { kind: 'ready' }
  | { kind: 'frame'; buffer: ArrayBuffer; offset: number; length: number }
  | { kind: 'synced'; seq: number; counters: EncoderCounters; cacheBytes: number }
  | { kind: 'error'; message: string };
