/**
 * A scripted source for driving the real destination (destination.ts) in one process: it migrates a real, paused
 * guest frame by frame with the real builders — HELLO, PAGES, ROUND, VCPU_STATE, SWITCHOVER or POSTCOPY_START, GO,
 * post-copy pushes and page requests, POSTCOPY_END, and on new links RECOVER and RECONCILE — and at any step can
 * instead drop the link, stay silent, send late, corrupt or unbind a frame, send another command or an ERROR
 * (script.ts). `destinationHarness` runs the real destination with hooks like the agent's and records what it did.
 */
import { MigrationError } from '../../errors.js';
import type { Guest } from '../../guest/index.js';
import { FrameConnection } from '../connection.js';
import {
  DEFAULT_DESTINATION_LIMITS,
  type DestinationHooks,
  type DestinationLimits,
  type IncomingMigration,
  type PausedIncoming,
  runDestination,
} from '../destination.js';
import { fullRamDigest, vcpuDigest } from '../ledger.js';
import { OwnershipRegistry } from '../ownership.js';
import {
  Capability,
  Command,
  type Digest,
  decodeApplied,
  decodeCompleteBody,
  decodeHelloAck,
  decodeOwner,
  decodePageRequest,
  decodeRecoverAck,
  encodeApplied,
  encodeDigest,
  encodeFrame,
  encodeHello,
  encodeJson,
  encodePostcopyStart,
  encodeReconcile,
  encodeRecover,
  encodeRound,
  type Frame,
  type Hello,
  MAX_HELLO_PAYLOAD,
  type OwnerState,
  PageEncoding,
  PagesFrameBuilder,
  PREAMBLE,
  PROTOCOL_VERSION,
  StrategyCode,
} from '../protocol/index.js';
import { newMigrationId } from '../source/index.js';
import { createLinkPair } from './link-pair.js';
import { corruptFrame, Script, type ScriptLine } from './script.js';

/** The frames a source sends; each is a step a script can change. */
export type SourceStep =
  | 'HELLO'
  | 'PAGES'
  | 'ROUND'
  | 'VCPU_STATE'
  | 'SWITCHOVER'
  | 'POSTCOPY_START'
  | 'GO'
  | 'POSTCOPY_END'
  | 'APPLIED';

export interface FakeSourceOptions {
  strategy?: 'precopy' | 'postcopy';
  script?: ScriptLine<SourceStep>[];
  /** Fields of HELLO to change (a version range, unknown capability bits, another guest id ...). */
  hello?: Partial<Hello>;
  /** Fields of the SWITCHOVER / POSTCOPY_END digest to change (a wrong RAM digest: DIGEST_MISMATCH). */
  digest?: Partial<Digest>;
  /**
   * Capability APPLIED_ACK: 'asked' offers it in HELLO and, after the pages, sends APPLIED 1 and waits for its
   * answer (calling `onApplied` when it comes, before anything else is sent); 'unasked' sends APPLIED without
   * offering the capability (a PROTOCOL error).
   */
  applied?: 'asked' | 'unasked';
  onApplied?: () => void | Promise<void>;
  /** Pages per PAGES frame (default 64: a 4 MiB guest's working set takes several frames). */
  pagesPerFrame?: number;
  /**
   * Pre-copy: the last this many PAGES frames go after VCPU_STATE, as a real source sends a small stop-and-copy
   * (state, last pages and digest in one write: source/handover.ts, beginOneWrite).
   */
  framesAfterState?: number;
}

/** How the fake's side of the migration ended. */
export interface FakeSourceResult {
  /** The destination's answers, in order (HELLO_ACK, READY, RESUMED, COMPLETE ...). */
  answers: string[];
  /** What the fake saw fail (the destination's ERROR, a lost link), if anything. */
  error?: MigrationError;
  /** COMPLETE's verdict (post-copy). */
  verified?: boolean;
  /** Pages the destination asked for (post-copy PAGE_REQUEST). */
  requested: number[];
}

/** Thrown inside the fake to stop at a scripted fault. */
class Stop extends Error {}

export class FakeSource {
  readonly script: Script<SourceStep>;
  readonly migrationId = newMigrationId();
  readonly token = newMigrationId();
  readonly result: FakeSourceResult = { answers: [], requested: [] };
  private bound = false;
  private readonly strategy: 'precopy' | 'postcopy';

  /** `guest`: a real guest, paused, whose RAM and vCPU state are migrated. */
  constructor(
    readonly guest: Guest,
    private readonly options: FakeSourceOptions = {},
  ) {
    this.script = new Script(options.script);
    this.strategy = options.strategy ?? 'precopy';
  }

  /** Runs the migration over `conn` (a link to the destination) until it ends or a scripted fault stops it. */
  async run(conn: FrameConnection): Promise<FakeSourceResult> {
    try {
      await this.hello(conn);
      if (this.strategy === 'precopy') {
        const frames = this.buildPages(this.sentPages());
        const after = frames.splice(
          frames.length - Math.min(this.options.framesAfterState ?? 0, frames.length),
        );
        for (const f of frames) await this.step(conn, 'PAGES', Command.PAGES, f);
        await this.step(conn, 'ROUND', Command.ROUND, encodeRound({ round: 1, pagesSent: 0, dirtyPages: 0 }));
        if (this.options.applied) {
          await this.step(conn, 'APPLIED', Command.APPLIED, encodeApplied(1));
          if (decodeApplied((await this.answer(conn, Command.APPLIED)).payload) !== 1) {
            throw new MigrationError('PROTOCOL', 'APPLIED answered with another sync point');
          }
          await this.options.onApplied?.();
        }
        await this.step(conn, 'VCPU_STATE', Command.VCPU_STATE, encodeJson(this.guest.state()));
        for (const f of after) await this.step(conn, 'PAGES', Command.PAGES, f);
        await this.step(conn, 'SWITCHOVER', Command.SWITCHOVER, encodeDigest(this.digest()));
        await this.answer(conn, Command.READY);
        await this.step(conn, 'GO', Command.GO);
        await this.answer(conn, Command.RESUMED);
        conn.socket.end();
      } else {
        await this.step(conn, 'VCPU_STATE', Command.VCPU_STATE, encodeJson(this.guest.state()));
        const none = new Uint8Array(Math.ceil(this.guest.ram.pageCount / 8));
        await this.step(conn, 'POSTCOPY_START', Command.POSTCOPY_START, encodePostcopyStart(none));
        await this.answer(conn, Command.READY);
        await this.step(conn, 'GO', Command.GO);
        await this.answer(conn, Command.RESUMED);
        await this.postcopy(conn, this.allPages());
      }
    } catch (err) {
      if (!(err instanceof Stop)) {
        this.result.error = err instanceof MigrationError ? err : new MigrationError('INTERNAL', String(err));
      }
    }
    return this.result;
  }

  /**
   * Post-copy recovery over a new link: RECOVER with this migration's id and token, then the pages the
   * destination does not hold (RECOVER_ACK's bitmap), POSTCOPY_END and COMPLETE.
   */
  async recover(conn: FrameConnection): Promise<FakeSourceResult> {
    try {
      conn.writeRaw(PREAMBLE);
      const count = this.guest.ram.pageCount;
      if (this.bound) {
        conn.bindFramesAfterReceiving(Command.RECOVER_ACK, (p) => decodeRecoverAck(p, count, true).nonce);
      }
      await conn.sendFrame(
        Command.RECOVER,
        encodeRecover({ migrationId: this.migrationId, token: this.token }),
      );
      const ack = await this.answer(conn, Command.RECOVER_ACK);
      const { present } = decodeRecoverAck(ack.payload, count, this.bound);
      const missing = this.allPages().filter((p) => !(present[p >> 3]! & (1 << (p & 7))));
      this.result.error = undefined;
      await this.postcopy(conn, missing);
    } catch (err) {
      if (!(err instanceof Stop)) {
        this.result.error = err instanceof MigrationError ? err : new MigrationError('INTERNAL', String(err));
      }
    }
    return this.result;
  }

  /** RECONCILE over a new link: the destination's OWNER answer; after `held` (query) GO, then RESUMED. */
  async reconcile(conn: FrameConnection, action: 'query' | 'abort'): Promise<OwnerState> {
    conn.writeRaw(PREAMBLE);
    await conn.sendFrame(
      Command.RECONCILE,
      encodeReconcile({ migrationId: this.migrationId, token: this.token, action }),
    );
    const owner = decodeOwner((await this.answer(conn, Command.OWNER)).payload);
    if (owner === 'held' && action === 'query') {
      await conn.sendFrame(Command.GO);
      await this.answer(conn, Command.RESUMED);
      conn.socket.end();
    }
    return owner;
  }

  private async hello(conn: FrameConnection): Promise<void> {
    const g = this.guest;
    const capabilities =
      Capability.FRAME_BINDING |
      Capability.OWNER_RECONCILE |
      (this.options.applied === 'asked' ? Capability.APPLIED_ACK : 0) |
      (this.strategy === 'postcopy' ? Capability.POSTCOPY | Capability.POSTCOPY_RECOVER : 0);
    const hello: Hello = {
      versionMin: 1,
      versionMax: PROTOCOL_VERSION,
      migrationId: this.migrationId,
      strategy: this.strategy === 'postcopy' ? StrategyCode.POSTCOPY : StrategyCode.PRECOPY,
      pageSize: g.ram.pageSize,
      capabilities,
      blocks: g.ram.blocks.map((b) => b.pageCount),
      vcpus: g.config.vcpus,
      guest: { id: 'g1', config: g.config, recoveryToken: this.token, handoverTimeoutMs: 15_000 },
      ...this.options.hello,
    };
    conn.writeRaw(PREAMBLE);
    conn.bindFramesAfterReceiving(Command.HELLO_ACK, (p) => decodeHelloAck(p).nonce);
    await this.step(conn, 'HELLO', Command.HELLO, encodeHello(hello));
    const ack = decodeHelloAck((await this.answer(conn, Command.HELLO_ACK)).payload);
    this.bound = ack.nonce !== undefined;
  }

  /** Every page, in address order. */
  private allPages(): number[] {
    return Array.from({ length: this.guest.ram.pageCount }, (_, p) => p);
  }

  /** Pre-copy's one round: the pages that are not zero (the destination's RAM starts zeroed). */
  private sentPages(): number[] {
    return this.allPages().filter((p) => !this.guest.ram.isZeroPage(p));
  }

  /** PAGES frames of `pages`, built by the real builder, each one a script step. */
  private async pages(conn: FrameConnection, pages: readonly number[]): Promise<void> {
    for (const frame of this.buildPages(pages)) await this.step(conn, 'PAGES', Command.PAGES, frame);
  }

  /** The payloads of PAGES frames of `pages` (RAW, or ZERO for a zero page). */
  private buildPages(pages: readonly number[]): Buffer[] {
    const ram = this.guest.ram;
    const out: Buffer[] = [];
    const per = this.options.pagesPerFrame ?? 64;
    const builder = new PagesFrameBuilder(
      per * (ram.pageSize + 9) + 4,
      (frame, release) => {
        out.push(Buffer.from(frame.subarray(8, frame.length - 4)));
        release();
      },
      ram.pageSize,
    );
    for (const p of pages) {
      if (ram.isZeroPage(p)) {
        builder.reserve(0);
        builder.commit(p, PageEncoding.ZERO, 0);
      } else {
        builder.reserve(ram.pageSize).set(ram.page(p));
        builder.commit(p, PageEncoding.RAW, ram.pageSize);
      }
    }
    builder.finishFrame();
    return out;
  }

  private digest(): Digest {
    return {
      method: 'ledger',
      ram: fullRamDigest(this.guest.ram.pageCount, (p) => this.guest.ram.page(p)),
      vcpu: vcpuDigest(this.guest.state()),
      ...this.options.digest,
    };
  }

  /** Post-copy after RESUMED: requested pages first, the rest in address order; then POSTCOPY_END, COMPLETE. */
  private async postcopy(conn: FrameConnection, pages: number[]): Promise<void> {
    const owed = new Set(pages);
    const requests: number[] = [];
    let complete: Frame | undefined;
    let wake: () => void = () => undefined;
    conn.divertFrames((f) => {
      if (f.command === Command.PAGE_REQUEST) {
        for (const p of decodePageRequest(f.payload, this.guest.ram.pageCount)) {
          this.result.requested.push(p);
          requests.push(p);
        }
      } else if (f.command === Command.COMPLETE) complete = f;
      else if (f.command === Command.ERROR) this.result.answers.push('ERROR');
      wake();
    });
    const per = this.options.pagesPerFrame ?? 64;
    while (owed.size > 0) {
      const batch: number[] = [];
      while (requests.length > 0 && batch.length < per) {
        const p = requests.shift()!;
        if (owed.delete(p)) batch.push(p);
      }
      for (const p of owed) {
        if (batch.length >= per) break;
        owed.delete(p);
        batch.push(p);
      }
      await this.pages(conn, batch);
      await new Promise((r) => setImmediate(r)); // let page requests in
    }
    await this.step(conn, 'POSTCOPY_END', Command.POSTCOPY_END, encodeDigest(this.digest()));
    while (!complete) {
      if (conn.error) throw conn.error;
      await new Promise<void>((resolve) => {
        wake = resolve;
        conn.onClose(() => resolve());
      });
    }
    conn.stopDiverting();
    this.result.answers.push('COMPLETE');
    this.result.verified = decodeCompleteBody(complete.payload).verified;
    conn.socket.end();
  }

  /** Waits for the destination's `command`; an ERROR or a lost link is recorded and ends the run. */
  private async answer(conn: FrameConnection, command: Command): Promise<Frame> {
    const f = await conn.expect(command);
    this.result.answers.push(Command[command]);
    return f;
  }

  /** Sends one frame as the script says. */
  private async step(
    conn: FrameConnection,
    step: SourceStep,
    command: Command,
    payload?: Buffer,
  ): Promise<void> {
    const line = this.script.reach(step);
    switch (line.do) {
      case 'normal':
        await conn.sendFrame(command, payload);
        break;
      case 'delay':
        await line.until;
        await conn.sendFrame(command, payload);
        break;
      case 'drop':
        conn.destroy();
        throw new Stop();
      case 'silence':
        throw new Stop();
      case 'corrupt':
        conn.writeRaw(corruptFrame(command, payload));
        throw new Stop();
      case 'foreign':
        conn.writeRaw(encodeFrame(command, payload));
        throw new Stop();
      case 'wrong':
        await conn.sendFrame(line.command);
        throw new Stop();
      case 'error':
        await conn.sendErrorAndClose(new MigrationError(line.code, line.message ?? `scripted ${line.code}`));
        throw new Stop();
    }
    if (line.thenDrop) {
      conn.destroy();
      throw new Stop();
    }
  }
}

/** The real destination served the way the agent serves it (agent.ts acceptMigration), with what it did recorded. */
export class DestinationHarness {
  readonly ownership = new OwnershipRegistry();
  /** Guests resumed here (onGuestResumed): the safety property is at most one, and only after GO. */
  readonly resumed: Guest[] = [];
  readonly held: IncomingMigration[] = [];
  readonly paused = new Map<string, PausedIncoming>();
  /** The first migration's record (onStart), live. */
  migration: IncomingMigration | undefined;
  private readonly open: FrameConnection[] = [];

  constructor(readonly limits: DestinationLimits = DEFAULT_DESTINATION_LIMITS) {}

  readonly hooks: DestinationHooks = {
    onStart: (m) => {
      this.migration ??= m;
    },
    onGuestResumed: (_id, guest) => {
      this.resumed.push(guest);
    },
    ownership: this.ownership,
    onHeld: (m) => {
      this.held.push(m);
    },
    onPostcopyPaused: (p) => {
      this.paused.set(p.migrationId, p);
    },
    findPaused: (id) => {
      const p = this.paused.get(id);
      this.paused.delete(id);
      return p;
    },
  };

  /** A new link to the destination: the source's end, and what runDestination returns for it. */
  connect(): { conn: FrameConnection; done: Promise<IncomingMigration | undefined> } {
    const [a, b] = createLinkPair();
    const theirs = new FrameConnection(b, { expectPreamble: true, maxPayload: MAX_HELLO_PAYLOAD });
    const mine = new FrameConnection(a);
    this.open.push(theirs, mine);
    return { conn: mine, done: runDestination(theirs, this.hooks, this.limits) };
  }

  /** Closes every link and the guests that resumed here. */
  async close(): Promise<void> {
    for (const c of this.open.splice(0)) c.destroy();
    this.ownership.close(new MigrationError('CANCELLED', 'the test is over'));
    await Promise.all(this.resumed.map((g) => g.destroy().catch(() => undefined)));
  }
}
