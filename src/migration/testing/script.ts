/**
 * What a scripted peer does at one step of the protocol (testing/fake-destination.ts, testing/fake-source.ts): the
 * normal thing, or one of the ways a real peer fails. Frames are built with the real protocol builders; only the
 * faults below bend them.
 */
import type { MigrationErrorCode } from '../../errors.js';
import { type Command, encodeFrame, FRAME_TRAILER_BYTES } from '../protocol/index.js';

export type PeerAction =
  /** What a correct peer does here (answer, or send the next frame). */
  | { do: 'normal' }
  /** Close the link instead (the other side sees CONNECTION_LOST). */
  | { do: 'drop' }
  /** Do nothing more on this link, but keep it open: the other side's own timeout decides. */
  | { do: 'silence' }
  /** Do the normal thing once `until` settles (an explicit event, not a clock). */
  | { do: 'delay'; until: Promise<unknown> }
  /** The frame with one trailer byte flipped (CHECKSUM). */
  | { do: 'corrupt' }
  /** The frame unbound, as if from another stream (FOREIGN_FRAME on a bound connection). */
  | { do: 'foreign' }
  /** A well-formed frame of another command in its place (PROTOCOL). */
  | { do: 'wrong'; command: Command }
  /** An ERROR frame with this code, then close (the other side reports the code as the peer's). */
  | { do: 'error'; code: MigrationErrorCode; message?: string };

/** One line of a script: `action` at the `nth` (1-based, default 1) occurrence of `at`. */
export type ScriptLine<Step extends string> = PeerAction & {
  at: Step;
  nth?: number;
  /** After the normal thing, close the link (e.g. RESUMED sent, then the link breaks). */
  thenDrop?: boolean;
};

export class Script<Step extends string> {
  private readonly counts = new Map<Step, number>();
  private readonly waiters: { step: Step; nth: number; resolve: () => void }[] = [];
  /** Every step reached, in order, with its occurrence: `PAGES#2`. */
  readonly trail: string[] = [];

  constructor(private readonly lines: readonly ScriptLine<Step>[] = []) {}

  /** Counts an occurrence of `step` and returns what to do there. */
  reach(step: Step): ScriptLine<Step> {
    const n = (this.counts.get(step) ?? 0) + 1;
    this.counts.set(step, n);
    this.trail.push(n === 1 ? step : `${step}#${n}`);
    for (const w of this.waiters.filter((x) => x.step === step && x.nth <= n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    return this.lines.find((l) => l.at === step && (l.nth ?? 1) === n) ?? { at: step, do: 'normal' };
  }

  /** How often `step` was reached. */
  count(step: Step): number {
    return this.counts.get(step) ?? 0;
  }

  /** Resolves when `step` has been reached `nth` times (for a test to act at that moment). */
  reached(step: Step, nth = 1): Promise<void> {
    if (this.count(step) >= nth) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ step, nth, resolve }));
  }
}

/** A complete frame with one trailer byte flipped: fails any CRC check, bound or not (CHECKSUM). */
export function corruptFrame(command: Command, payload?: Uint8Array): Buffer {
  const f = encodeFrame(command, payload);
  f[f.length - FRAME_TRAILER_BYTES] ^= 0x40;
  return f;
}
