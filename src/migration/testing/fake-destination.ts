/**
 * A scripted destination for driving the real source (source/) in one process: it speaks the protocol frame by
 * frame with the real builders and readers — HELLO_ACK, READY, RESUMED, COMPLETE, RECOVER_ACK, OWNER, PAGE_REQUEST —
 * and at any step can instead drop the link, stay silent, answer late, corrupt or unbind a frame, send the wrong
 * one or an ERROR (script.ts). Left to itself it is a correct, honest destination: it rebuilds RAM from the PAGES it
 * receives, checks the digest at switch-over and answers ERROR DIGEST_MISMATCH when it does not match.
 */
import { type Compressor, compressor } from '../../codec/index.js';
import { MigrationError } from '../../errors.js';
import { FrameConnection } from '../connection.js';
import { PageLedger, pageCrc, vcpuDigest } from '../ledger.js';
import { decodePageInto } from '../page-decode.js';
import {
  Capability,
  Command,
  DEFAULT_MAX_FRAME,
  decodeDigest,
  decodeHello,
  decodePostcopyStart,
  decodePreempt,
  decodeReconcile,
  decodeRecover,
  decodeVcpuState,
  encodeFrame,
  encodeHelloAck,
  encodeJson,
  encodeOwner,
  encodePageRequest,
  encodePreemptAck,
  encodeRecoverAck,
  type Frame,
  forEachPageEntry,
  type Hello,
  MAX_HELLO_PAYLOAD,
  type OwnerState,
  PageEncoding,
  PROTOCOL_VERSION,
} from '../protocol/index.js';
import { createLinkPair } from './link-pair.js';
import { corruptFrame, Script, type ScriptLine } from './script.js';

/** The frames a destination reacts to; each is a step a script can change. */
export type DestinationStep =
  | 'HELLO'
  | 'PAGES'
  | 'ROUND'
  | 'VCPU_STATE'
  | 'SWITCHOVER'
  | 'POSTCOPY_START'
  | 'GO'
  | 'POSTCOPY_END'
  | 'RECOVER'
  | 'RECONCILE'
  | 'PREEMPT'
  | 'APPLIED';

export interface FakeDestinationOptions {
  script?: ScriptLine<DestinationStep>[];
  /** Capability bits HELLO_ACK leaves out of what the source asked for (a destination that lacks them). */
  withhold?: number;
  /** HELLO_ACK's protocol version (default: the highest both speak). */
  version?: number;
  /** Post-copy: pages the guest "faults" on right after RESUMED (sent as PAGE_REQUEST). */
  faults?: number[];
  /** OWNER's answer to RECONCILE (default: the truth: resumed, held or unknown). */
  owner?: OwnerState;
}

export class FakeDestination {
  readonly script: Script<DestinationStep>;
  /** Every frame received (command names, in order, over all connections). */
  readonly received: string[] = [];
  /** The source's HELLO, once received. */
  hello: Hello | undefined;
  /** RAM as rebuilt from the PAGES received. */
  ram = Buffer.alloc(0);
  pageSize = 0;
  pageCount = 0;
  /** Pages received at least once (post-copy's "present"). */
  present = new Uint8Array(0);
  /** READY sent and not yet GO: a verified copy is held here. */
  readySent = false;
  /** RESUMED sent: the guest "runs" here. */
  resumed = false;
  /** The source's digest at switch-over matched what was received. */
  verified = false;
  /** Connections opened to this fake so far (the first is the migration's; later ones RECOVER or RECONCILE). */
  connections = 0;
  /** While false, `connect` throws CONNECTION_REFUSED (the destination host is unreachable). */
  reachable = true;
  private ledger: PageLedger | undefined;
  /** Decoders of the compressed encodings HELLO_ACK granted. */
  private readonly compressors = new Map<PageEncoding, Compressor>();
  private vcpuState: unknown;
  private bound = false;
  private readonly open: FrameConnection[] = [];

  constructor(private readonly options: FakeDestinationOptions = {}) {
    this.script = new Script(options.script);
  }

  /** A new link to this destination: the source's FrameConnection (serve runs on the other end). */
  connect(): FrameConnection {
    if (!this.reachable) {
      throw new MigrationError('CONNECTION_REFUSED', 'the fake destination is unreachable');
    }
    this.connections++;
    const [a, b] = createLinkPair();
    const mine = new FrameConnection(b, { expectPreamble: true, maxPayload: MAX_HELLO_PAYLOAD });
    this.open.push(mine);
    void this.serve(mine).catch(() => mine.destroy());
    return new FrameConnection(a);
  }

  /** Closes every link this fake holds (for a test's cleanup). */
  close(): void {
    for (const c of this.open.splice(0)) c.destroy();
  }

  private async serve(conn: FrameConnection): Promise<void> {
    for (;;) {
      let f: Frame;
      try {
        f = await conn.receive();
      } catch {
        return; // the link is gone (or the source sent ERROR / CANCEL): nothing more on it
      }
      const name = Command[f.command] ?? String(f.command);
      this.received.push(name);
      const step = name as DestinationStep;
      const line = this.script.reach(step);
      if (!(await this.perform(conn, line, f))) return;
    }
  }

  /** Carries out one step; false = this link is done. */
  private async perform(
    conn: FrameConnection,
    line: ScriptLine<DestinationStep>,
    f: Frame,
  ): Promise<boolean> {
    switch (line.do) {
      case 'drop':
        conn.destroy();
        return false;
      case 'silence':
        await new Promise<void>((resolve) => conn.onClose(() => resolve()));
        return false;
      case 'error':
        await conn.sendErrorAndClose(new MigrationError(line.code, line.message ?? `scripted ${line.code}`));
        return false;
      case 'delay':
        await line.until;
        break;
      default:
        break;
    }
    const answer = this.handle(conn, f);
    if (line.do === 'corrupt') {
      conn.writeRaw(corruptFrame(answer?.command ?? Command.RESUMED, answer?.payload));
      return false;
    }
    if (line.do === 'foreign') {
      const a = answer ?? { command: Command.RESUMED, payload: encodeJson({ ok: true }) };
      conn.writeRaw(encodeFrame(a.command, a.payload));
      return true;
    }
    if (line.do === 'wrong') {
      await conn.sendFrame(line.command, answer?.payload ?? encodeJson({ ok: true }));
      return true;
    }
    if (answer) await answer.send(conn);
    if (line.thenDrop) {
      conn.destroy();
      return false;
    }
    return true;
  }

  /** What a correct destination does on `f`: updates its state and returns its answer, if it answers. */
  private handle(
    conn: FrameConnection,
    f: Frame,
  ): { command: Command; payload: Buffer; send: (c: FrameConnection) => Promise<void> } | undefined {
    const plain = (command: Command, payload: Buffer) => ({
      command,
      payload,
      send: (c: FrameConnection) => c.sendFrame(command, payload),
    });
    switch (f.command) {
      case Command.HELLO: {
        const h = decodeHello(f.payload);
        this.hello = h;
        this.pageSize = h.pageSize;
        this.pageCount = h.blocks.reduce((a, b) => a + b, 0);
        this.ram = Buffer.alloc(this.pageCount * this.pageSize);
        this.present = new Uint8Array(this.pageCount);
        this.ledger = new PageLedger(this.pageCount, this.pageSize);
        // SWITCHOVER_ACK is not scripted here: a destination that granted it would have to send it.
        const capabilities = h.capabilities & ~(this.options.withhold ?? 0) & ~Capability.SWITCHOVER_ACK;
        for (const [cap, encoding, name] of [
          [Capability.DEFLATE, PageEncoding.DEFLATE, 'deflate'],
          [Capability.ZSTD, PageEncoding.ZSTD, 'zstd'],
          [Capability.LZ4, PageEncoding.LZ4, 'lz4'],
        ] as const) {
          if (capabilities & cap) this.compressors.set(encoding, compressor(name));
        }
        this.bound = (capabilities & Capability.FRAME_BINDING) !== 0;
        const nonce = this.bound ? conn.bindFramesWithNewNonce(Command.HELLO_ACK) : undefined;
        conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
        return plain(
          Command.HELLO_ACK,
          encodeHelloAck({
            version: this.options.version ?? Math.min(PROTOCOL_VERSION, h.versionMax),
            capabilities,
            maxFrame: DEFAULT_MAX_FRAME,
            ...(nonce ? { nonce } : {}),
          }),
        );
      }
      case Command.PAGES:
        forEachPageEntry(f.payload, this.pageCount, this.pageSize, (p, encoding, data) => {
          const page = this.page(p);
          decodePageInto(p, encoding, data, page, this.compressors);
          this.ledger!.set(p, pageCrc(page));
          this.present[p] = 1;
        });
        return undefined;
      case Command.VCPU_STATE:
        this.vcpuState = decodeVcpuState(f.payload);
        return undefined;
      case Command.SWITCHOVER: {
        const d = decodeDigest(f.payload);
        this.verified =
          d.method === 'none' || (d.ram === this.ledger!.digest() && d.vcpu === vcpuDigest(this.vcpuState));
        if (!this.verified) {
          const e = new MigrationError('DIGEST_MISMATCH', 'the fake destination: digest mismatch');
          return {
            command: Command.ERROR,
            payload: encodeJson({ code: e.code, message: e.message }),
            send: (c) => c.sendErrorAndClose(e),
          };
        }
        this.readySent = true;
        return plain(Command.READY, encodeJson({ ok: true }));
      }
      case Command.POSTCOPY_START: {
        const valid = decodePostcopyStart(f.payload, this.pageCount);
        for (let p = 0; p < this.pageCount; p++) {
          if (valid[p >> 3]! & (1 << (p & 7))) this.present[p] = 1;
        }
        this.readySent = true;
        return plain(Command.READY, encodeJson({ ok: true }));
      }
      case Command.GO: {
        this.readySent = false;
        this.resumed = true;
        const faults = this.hello && this.hello.strategy >= 2 ? (this.options.faults ?? []) : [];
        const body = encodeJson({ ok: true });
        return {
          command: Command.RESUMED,
          payload: body,
          send: async (c) => {
            await c.sendFrame(Command.RESUMED, body);
            const missing = faults.filter((p) => !this.present[p]);
            if (missing.length > 0) await c.sendFrame(Command.PAGE_REQUEST, encodePageRequest(missing));
          },
        };
      }
      case Command.POSTCOPY_END: {
        const d = decodeDigest(f.payload, 'POSTCOPY_END');
        const missing = this.present.reduce((n, x) => n + (x ? 0 : 1), 0);
        this.verified =
          missing === 0 &&
          (d.method === 'none' || (d.ram === this.ledger!.digest() && d.vcpu === vcpuDigest(this.vcpuState)));
        return plain(
          Command.COMPLETE,
          encodeJson({ verified: this.verified, faults: 0, faultLatencyMs: [], missing }),
        );
      }
      case Command.RECOVER: {
        decodeRecover(f.payload);
        conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
        const bitmap = new Uint8Array(Math.ceil(this.pageCount / 8));
        for (let p = 0; p < this.pageCount; p++) if (this.present[p]) bitmap[p >> 3]! |= 1 << (p & 7);
        const nonce = this.bound ? conn.bindFramesWithNewNonce(Command.RECOVER_ACK) : undefined;
        return plain(Command.RECOVER_ACK, encodeRecoverAck(bitmap, nonce));
      }
      case Command.PREEMPT: {
        // postcopy-preempt: this link then carries PAGES only (handled above like the main link's).
        decodePreempt(f.payload);
        conn.reader.setMaxPayload(DEFAULT_MAX_FRAME);
        const nonce = this.bound ? conn.bindFramesWithNewNonce(Command.PREEMPT_ACK) : undefined;
        return plain(Command.PREEMPT_ACK, encodePreemptAck(nonce));
      }
      case Command.APPLIED:
        // Pages are applied as they arrive here: everything before it is in RAM already.
        return plain(Command.APPLIED, Buffer.from(f.payload));
      case Command.RECONCILE: {
        decodeReconcile(f.payload);
        const state: OwnerState =
          this.options.owner ?? (this.resumed ? 'resumed' : this.readySent ? 'held' : 'unknown');
        return plain(Command.OWNER, encodeOwner(state));
      }
      default:
        return undefined;
    }
  }

  /** Page `p` of the rebuilt RAM. */
  page(p: number): Buffer {
    return this.ram.subarray(p * this.pageSize, (p + 1) * this.pageSize);
  }
}
