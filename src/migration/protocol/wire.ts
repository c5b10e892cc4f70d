/**
 * The livemig migration protocol: one TCP (or TLS) connection per migration (a post-copy with POSTCOPY_PREEMPT adds
 * a second one, PREEMPT, for the answers to page faults), source → destination, with
 * post-copy page requests flowing back on the same connection. The whole conversation, before any code:
 *
 * ```mermaid
 * sequenceDiagram
 *   participant S as source agent
 *   participant D as destination agent
 *   S->>D: preamble "LVMGMIG1"
 *   S->>D: HELLO (versions, strategy, page size, RAM layout, codecs, guest config)
 *   D-->>S: HELLO_ACK (chosen version, accepted codecs, max frame) — or ERROR
 *   D-->>S: SWITCHOVER_ACK (capability SWITCHOVER_ACK: vCPU threads up; the source pauses only after it)
 *   loop pre-copy round r = 1..n (none for cold / pure post-copy)
 *     S->>D: PAGES* (zero / raw / XBZRLE / RLE / compressed entries)
 *     S->>D: ROUND (r, pages sent, dirty pages left)
 *   end
 *   opt capability APPLIED_ACK: before the pause, after each live pass
 *     S->>D: APPLIED k
 *     D-->>S: APPLIED k (every page before it applied; the source pauses only after it, or a timeout)
 *   end
 *   Note over S: pause guest, last dirty pages
 *   S->>D: PAGES* , VCPU_STATE
 *   alt pre-copy / cold
 *     S->>D: SWITCHOVER (digest of RAM and vCPU state)
 *     S->>D: GO (the source gives the guest up; with OWNER_RECONCILE in the same write as SWITCHOVER, else after READY)
 *     D-->>S: READY (digest verified) — or ERROR (DIGEST_MISMATCH: no copy kept, the source keeps the guest)
 *     D-->>S: RESUMED (guest running on the destination; the destination's step times)
 *   else post-copy / hybrid
 *     S->>D: POSTCOPY_START (pages already valid at the destination)
 *     D-->>S: READY
 *     S->>D: GO
 *     D-->>S: RESUMED
 *     par background push and demand faults
 *       S->>D: PAGES* (pushed in address order)
 *       D-->>S: PAGE_REQUEST (pages the guest faulted on)
 *       S->>D: PAGES (requested pages first)
 *     end
 *     S->>D: POSTCOPY_END (digest of the RAM the source sent)
 *     D-->>S: COMPLETE (digest verified, destination statistics)
 *   end
 * ```
 *
 * Receiver (destination) states:
 *
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> AwaitHello
 *   AwaitHello --> Receiving: HELLO accepted
 *   Receiving --> Receiving: PAGES / ROUND / VCPU_STATE
 *   Receiving --> Verifying: SWITCHOVER
 *   Verifying --> AwaitGo: digest ok, READY sent
 *   Receiving --> AwaitGo: POSTCOPY_START, READY sent
 *   AwaitGo --> Running: GO (guest resumed, RESUMED sent)
 *   Running --> Running: PAGES (post-copy)
 *   Running --> Done: POSTCOPY_END verified / after RESUMED (pre-copy)
 *   AwaitHello --> Discarded: error, cancel, lost connection
 *   Receiving --> Discarded: error, cancel, lost connection
 *   Verifying --> Discarded: digest mismatch
 *   AwaitGo --> Discarded: lost connection (source keeps the guest)
 * ```
 *
 * Framing. After an 8-byte preamble, everything is a frame:
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | payload length L, u32 big-endian, ≤ the negotiated maximum |
 * | 4 | 1 | command (enum {@link Command}) |
 * | 5 | 3 | reserved, must be 0 |
 * | 8 | L | payload |
 * | 8+L | 4 | CRC32C (Castagnoli) of bytes 0 .. 8+L, u32 big-endian |
 *
 * Frame binding (capability FRAME_BINDING): HELLO_ACK (or RECOVER_ACK) carries a random 16-byte nonce, and every
 * later frame's CRC32C, in both directions, is taken over (nonce ‖ sender ‖ sequence number ‖ frame) instead of the
 * frame alone — sender 0 = source, 1 = destination, sequence u64 counting that sender's frames from 0. A frame of
 * another migration, or one replayed, reordered or dropped, then fails its check on arrival (FOREIGN_FRAME) and is
 * refused before it is used. It is an integrity check against mixed-up streams, not authentication: the nonce
 * travels in clear. TLS authenticates; this catches what plain TCP cannot.
 *
 * Versioning and compatibility: HELLO carries the range of protocol versions the source speaks; the destination
 * picks the highest it also speaks or refuses with ERROR(VERSION). A new optional feature is a new capability bit
 * (never a reinterpretation of an old field); a change to the meaning of an existing frame is a new version.
 * Unknown commands, non-zero reserved bytes, bad checksums and out-of-bound fields are errors, never skipped.
 */
export const PREAMBLE = Buffer.from('LVMGMIG1', 'latin1');
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_TRAILER_BYTES = 4;
/** Default and hard ceiling on a frame's payload: bounds what a peer can make us buffer. */
export const DEFAULT_MAX_FRAME = 4 << 20;
export const HARD_MAX_FRAME = 64 << 20;
/** Bound on JSON carried in HELLO / VCPU_STATE / ERROR / COMPLETE payloads. */
export const MAX_JSON_BYTES = 1 << 20;
/**
 * Largest frame a destination reads before it has accepted a HELLO (HELLO or RECOVER: fixed fields, up to
 * MAX_BLOCKS block sizes and the guest JSON): an unauthenticated peer cannot make it buffer a 4 MiB frame.
 */
export const MAX_HELLO_PAYLOAD = MAX_JSON_BYTES + 64 * 1024;

/** Every command of the protocol, one enum (the value is the byte on the wire). */
export enum Command {
  HELLO = 1,
  HELLO_ACK = 2,
  PAGES = 3,
  ROUND = 4,
  VCPU_STATE = 5,
  SWITCHOVER = 6,
  READY = 7,
  GO = 8,
  RESUMED = 9,
  POSTCOPY_START = 10,
  PAGE_REQUEST = 11,
  POSTCOPY_END = 12,
  COMPLETE = 13,
  ERROR = 14,
  CANCEL = 15,
  /** First frame of a new connection that resumes a post-copy whose link broke (instead of HELLO). */
  RECOVER = 16,
  /** The destination's answer to RECOVER: the bitmap of pages it holds. */
  RECOVER_ACK = 17,
  /**
   * First frame of a connection that settles who runs the guest after a fault between READY and RESUMED (instead
   * of HELLO): "did the guest resume on your side?" (docs/protocol.md, "Who owns the guest after GO").
   */
  RECONCILE = 18,
  /** The destination's answer to RECONCILE: resumed, held (verified, paused, waiting for GO) or gone. */
  OWNER = 19,
  /**
   * Capability APPLIED_ACK (QEMU's MIG_CMD_PING / MIG_RP_MSG_PONG, answered only once applied): source → destination,
   * a sync point (u32) after a live pass; destination → source, the same u32 once every page sent before it is in
   * RAM and the ledger. The source pauses the guest only after it (bounded), so the destination's backlog of the
   * last live pass is not downtime.
   */
  APPLIED = 20,
  /**
   * First frame of the post-copy preempt channel (capability POSTCOPY_PREEMPT, QEMU's postcopy-preempt): a second
   * connection of the same migration, `{migrationId, token}` as RECOVER, that carries only the pages answering the
   * destination's PAGE_REQUESTs.
   */
  PREEMPT = 22,
  /** The destination's answer to PREEMPT: the channel's frame-binding nonce (empty without FRAME_BINDING). */
  PREEMPT_ACK = 23,
  /**
   * A piece of a `trace` guest's recording, sent right after HELLO_ACK (HELLO's guest JSON announces its size): the
   * destination replays the trace it received, never a file a peer names. (Numbered apart from the commands above
   * so that new handshake commands can take the next numbers.)
   */
  TRACE = 32,
  /**
   * Parallel channels (capability MULTIFD, QEMU's multifd): first frame of an extra connection that carries a share
   * of a migration's pages, `{migrationId, token, channel}` (bodies.ts).
   */
  CHANNEL = 40,
  /** The destination's answer to CHANNEL: the channel's frame-binding nonce (empty if the migration is unbound). */
  CHANNEL_ACK = 41,
  /**
   * A sync point (u32): on a channel, every page the source queued on it before this sync point precedes it; on the
   * main connection, the destination waits until every channel has applied its pages up to the same sync point.
   */
  SYNC = 42,
  /**
   * Destination → source, once, with capability SWITCHOVER_ACK (QEMU's switchover-ack): the incoming guest's vCPU
   * threads are up, so a switch-over will not wait for them; the source does not pause the guest before it.
   */
  SWITCHOVER_ACK = 44,
}

/** How one page travels inside a PAGES frame (the value is the byte on the wire). */
export enum PageEncoding {
  /** All bytes zero; no data. */
  ZERO = 0,
  /** The page as is; data length = page size. */
  RAW = 1,
  /** QEMU's XBZRLE delta against the copy the destination already holds; 1 ≤ length < page size. */
  XBZRLE = 2,
  /** livemig's RLE of the page alone (no previous copy needed). */
  RLE = 3,
  DEFLATE = 4,
  ZSTD = 5,
  LZ4 = 6,
}

/** Capability bits offered in HELLO and accepted in HELLO_ACK. */
export const Capability = {
  XBZRLE: 1 << 0,
  RLE: 1 << 1,
  DEFLATE: 1 << 2,
  ZSTD: 1 << 3,
  LZ4: 1 << 4,
  POSTCOPY: 1 << 5,
  /** The source can reconnect after a broken post-copy link (RECOVER); HELLO's guest JSON carries the token. */
  POSTCOPY_RECOVER: 1 << 6,
  /** Frames after HELLO_ACK / RECOVER_ACK are bound to the connection's nonce and their sequence number. */
  FRAME_BINDING: 1 << 7,
  /**
   * After READY the destination holds a verified guest paused until GO or a RECONCILE verdict, never discarding it
   * on a lost link; HELLO's guest JSON carries the token (recoveryToken) a RECONCILE must present.
   */
  OWNER_RECONCILE: 1 << 8,
  /**
   * The destination answers APPLIED once every page sent before it is applied; the source waits for it before it
   * pauses the guest (source/applied-ack.ts). Optional both ways: without it the source pauses at once.
   */
  APPLIED_ACK: 1 << 9,
  /**
   * Parallel channels (QEMU's multifd): pages travel on extra connections (CHANNEL), the main one keeps the control
   * stream; HELLO's guest JSON says how many (`multifd: {channels}`) and carries the token a CHANNEL must present.
   */
  MULTIFD: 1 << 10,
  /**
   * QEMU's postcopy-preempt: the source opens a second connection (PREEMPT) that carries only the answers to
   * PAGE_REQUEST, unthrottled and never queued behind the background push; HELLO's guest JSON carries the token.
   */
  POSTCOPY_PREEMPT: 1 << 12,
  /**
   * QEMU's switchover-ack: the destination sends SWITCHOVER_ACK once it is ready to take the guest over (its vCPU
   * threads started), and the source pauses the guest only after it — starting threads is not downtime.
   */
  SWITCHOVER_ACK: 1 << 13,
} as const;

/** Bytes of the frame-binding nonce in HELLO_ACK and RECOVER_ACK. */
export const BINDING_NONCE_BYTES = 16;
/** Who sent a frame, in the frame-binding prefix. */
export enum FrameSender {
  SOURCE = 0,
  DESTINATION = 1,
}

export enum StrategyCode {
  COLD = 0,
  PRECOPY = 1,
  POSTCOPY = 2,
  HYBRID = 3,
}
