/**
 * One decision per pre-copy round, shared by livemig's engine (source/precopy.ts), the QEMU bridge (qemu/migrate.ts)
 * and the pre-copy model (model.ts). Pure: round statistics and a small state in, the decision, the next state, the
 * changes to make (downtime limit, throttle) and the event lines out; each engine only acts on the outcome.
 *
 * The order of one round: detect non-convergence and stalls (once each, events); decide (timeouts and convergence
 * when the engine estimates them itself, a round without progress whose set fits the limit at the stop-and-copy's
 * own rate where nothing else acts on such rounds (`noProgressSwitchoverApplies`), then the stop rules: policy.ts); if the migration goes on, act between
 * rounds: auto-converge's throttle step (where the engine throttles; QEMU's capability throttles on its own), then
 * the downtime limit: the downtime ramp while it has room, else Proxmox's "double the downtime".
 *
 * The downtime ramp (KubeVirt VEP 248/291) comes first: while its limit is below MAX, a round that did not shrink
 * the dirty set raises the limit by STEP, and no other stall action runs (non-convergence and stall detection and
 * their actions, auto-converge, double-downtime; the engine's dirty limit, told by `rampHolds`). Once the ramp is at
 * MAX the other rules act as without it.
 */
import { anotherRoundPays, expectedNextDirty, type TailLimits } from './converge-tail.js';
import type { DowntimeRamp, MigrationOptions } from './options.js';
import {
  autoConvergeStep,
  type Decision,
  decideAfterRound,
  isNotConverging,
  isStalled,
  madeNoProgress,
  type RoundSample,
  stopRules,
  throttleToCap,
} from './policy.js';

export { madeNoProgress } from './policy.js';

/** QEMU's largest downtime-limit (MAX_MIGRATE_DOWNTIME, 2000 s): the limit is never doubled past it. */
export const MAX_DOWNTIME_LIMIT_MS = 2_000_000;

/** What a migration carries from one round's decision to the next. */
export interface RoundState {
  /** The downtime limit in force (raised by the ramp or doubled on stalls). */
  readonly downtimeLimitMs: number;
  /** auto-converge's throttle (percent held back) and trigger counter, where the engine throttles. */
  readonly throttle: number;
  readonly throttleTriggers: number;
  /** Non-convergence and stalls are reported once each. */
  readonly notConvergingReported: boolean;
  readonly stallReported: boolean;
  /** Rounds run after convergence because another was expected to shrink the dirty set (converge-tail.ts). */
  readonly tailRounds: number;
}

/** One raise of the downtime limit (the report's `downtimeRamp` lists the ramp's). */
export interface DowntimeRaise {
  round: number;
  fromMs: number;
  toMs: number;
}

/** The engine's own view of the stop-and-copy: absent where the hypervisor decides convergence itself (QEMU). */
export interface RoundEstimate {
  /** Measured bandwidth, bytes/s. */
  bandwidth: number;
  /** Wire bytes per dirty page. */
  bytesPerPage: number;
  elapsedMs: number;
  msSinceProgress: number;
  /** The stop-and-copy's own rate, bytes/s (policy.ts, switchoverBandwidth); absent = the no-progress rule is off. */
  switchoverBandwidth?: number;
}

export interface RoundInput {
  /** Every round so far, the one that just ended last. */
  samples: readonly RoundSample[];
  pageSize: number;
  estimate?: RoundEstimate;
  /** 'engine': this engine applies auto-converge's rule (the outcome's `throttle`); 'hypervisor': QEMU does. */
  autoConverge: 'engine' | 'hypervisor';
  /** The engine runs converged rounds on while each is expected to shrink the dirty set (converge-tail.ts; with `estimate` only). */
  tail?: TailLimits;
}

export interface RoundOutcome {
  decision: Decision;
  state: RoundState;
  /** Event lines without a timestamp, in the order they happened. */
  events: string[];
  /** A stall was declared in this round (the report's `stalled`). */
  stalled: boolean;
  /** The downtime limit changed; it applies from the next decision. */
  downtime?: DowntimeRaise & { cause: 'ramp' | 'double-downtime' };
  /** auto-converge moved the throttle (engine only): apply `cap` to the guest. */
  throttle?: { throttle: number; cap: number };
  /** The downtime ramp had room this round: the engine's own convergence aids (the dirty limit) wait too. */
  rampHolds: boolean;
}

export function initialRoundState(o: Pick<MigrationOptions, 'downtimeLimitMs' | 'downtimeRamp'>): RoundState {
  return {
    downtimeLimitMs: o.downtimeRamp ? o.downtimeRamp.startMs : o.downtimeLimitMs,
    throttle: 0,
    throttleTriggers: 0,
    notConvergingReported: false,
    stallReported: false,
    tailRounds: 0,
  };
}

/** Whether auto-converge's rule runs (asked for, or the action for non-convergence or stalls). */
export function usesAutoConverge(
  o: Pick<MigrationOptions, 'autoConverge' | 'onNonConvergence' | 'onStall'>,
): boolean {
  return o.autoConverge || o.onNonConvergence === 'auto-converge' || o.onStall === 'auto-converge';
}

/** True while a ramp is set and its limit is below its MAX: the ramp acts, the other stall actions wait. */
export function rampHolds(downtimeLimitMs: number, ramp: DowntimeRamp | null): boolean {
  return ramp !== null && downtimeLimitMs < ramp.maxMs;
}

/**
 * Where a round without progress switches over when its set fits the limit at the stop-and-copy's own rate
 * (policy.ts): where nothing else was asked to act on such rounds, so they would only repeat until max-rounds and
 * the same set would be paused then. Not when the user chose an action for them (a stall or non-convergence action,
 * auto-converge, the dirty limit, the downtime ramp while it has room) nor with hybrid (post-copy takes over after
 * its rounds): those act as documented.
 */
export function noProgressSwitchoverApplies(o: MigrationOptions, holding: boolean): boolean {
  return (
    !holding &&
    o.strategy !== 'hybrid' &&
    o.onStall === 'continue' &&
    o.onNonConvergence === 'continue' &&
    !usesAutoConverge(o) &&
    !o.dirtyLimit
  );
}

/** The next limit on the ramp: one STEP up, never past MAX. */
export function rampStep(downtimeLimitMs: number, ramp: DowntimeRamp): number {
  return Math.min(ramp.maxMs, downtimeLimitMs + ramp.stepMs);
}

/** Proxmox's rule: the limit doubled, never past QEMU's largest. */
export function doubledLimit(downtimeLimitMs: number): number {
  return Math.min(MAX_DOWNTIME_LIMIT_MS, downtimeLimitMs * 2);
}

/** The error code of an abort decision. */
export function abortCode(
  reason: Extract<Decision, { action: 'abort' }>['reason'],
): 'STALLED' | 'NOT_CONVERGED' | 'TIMEOUT' {
  return reason === 'stalled' ? 'STALLED' : reason === 'not-converging' ? 'NOT_CONVERGED' : 'TIMEOUT';
}

/** The decision after a round, and what changes before the next one. */
export function decideRound(state: RoundState, input: RoundInput, o: MigrationOptions): RoundOutcome {
  const { samples } = input;
  const last = samples[samples.length - 1];
  if (!last)
    return { decision: { action: 'next-round' }, state, events: [], stalled: false, rampHolds: false };
  const events: string[] = [];
  let next: RoundState = state;
  let stalled = false;
  const holding = rampHolds(state.downtimeLimitMs, o.downtimeRamp);
  if (!holding) {
    if (!state.notConvergingReported && isNotConverging(samples, o.nonConvergenceRounds)) {
      next = { ...next, notConvergingReported: true };
      events.push(
        `not converging: the guest dirtied pages as fast as they were sent for ${o.nonConvergenceRounds} rounds (action: ${o.onNonConvergence})`,
      );
    }
    if (!state.stallReported && isStalled(samples, o.stallRounds)) {
      next = { ...next, stallReported: true };
      stalled = true;
      events.push(`stalled: no progress for ${o.stallRounds} rounds (action: ${o.onStall})`);
    }
  }
  // While the ramp has room, the non-convergence and stall actions wait (continue); every other rule stands.
  const rules: MigrationOptions = {
    ...o,
    downtimeLimitMs: state.downtimeLimitMs,
    ...(holding ? { onNonConvergence: 'continue', onStall: 'continue' } : {}),
  };
  const est = input.estimate;
  const swb = est?.switchoverBandwidth;
  let decision = est
    ? decideAfterRound(
        {
          rounds: samples as RoundSample[],
          bandwidth: est.bandwidth,
          bytesPerPage: est.bytesPerPage,
          elapsedMs: est.elapsedMs,
          msSinceProgress: est.msSinceProgress,
          ...(swb !== undefined && noProgressSwitchoverApplies(o, holding)
            ? { switchoverBandwidth: swb }
            : {}),
          pageSize: input.pageSize,
          throttle: state.throttle,
          throttleTriggers: state.throttleTriggers,
          downtimeLimitMs: state.downtimeLimitMs,
        },
        rules,
      )
    : stopRules(samples, rules);
  if (
    decision.action === 'switchover' &&
    decision.reason === 'converged' &&
    est &&
    input.tail &&
    anotherRoundPays({
      samples,
      ...est,
      tailRounds: state.tailRounds,
      maxRounds: o.maxRounds,
      limits: input.tail,
    })
  ) {
    decision = { action: 'next-round' };
    next = { ...next, tailRounds: next.tailRounds + 1 };
    const left = Math.round(expectedNextDirty(last, est.bytesPerPage, est.bandwidth));
    events.push(
      `converged with ${last.dirtyPages} dirty pages; another live round is expected to leave about ${left}, ` +
        'so it runs before the switch-over',
    );
  }
  if (decision.action === 'switchover' && decision.reason === 'no-progress' && est && swb !== undefined) {
    events.push(
      `no progress in round ${last.round}: its ${last.dirtyPages} dirty pages fit the ${state.downtimeLimitMs} ms ` +
        `limit at the stop-and-copy's own rate (${(swb / 1048576).toFixed(0)} MiB/s), and more rounds would only ` +
        'resend them',
    );
  }
  if (decision.action !== 'next-round') return { decision, state: next, events, stalled, rampHolds: holding };

  const out: RoundOutcome = { decision, state: next, events, stalled, rampHolds: holding };
  if (!holding && input.autoConverge === 'engine' && usesAutoConverge(o)) {
    const step = autoConvergeStep(last, input.pageSize, state.throttle, state.throttleTriggers, o);
    next = { ...next, throttle: step.throttle, throttleTriggers: step.triggers };
    if (step.throttle !== state.throttle) {
      const cap = throttleToCap(step.throttle);
      out.throttle = { throttle: step.throttle, cap };
      events.push(`auto-converge: throttle ${step.throttle}% (CAP ${cap})`);
    }
  }
  if (madeNoProgress(samples)) {
    const fromMs = state.downtimeLimitMs;
    if (holding && o.downtimeRamp) {
      const toMs = rampStep(fromMs, o.downtimeRamp);
      out.downtime = { round: last.round, fromMs, toMs, cause: 'ramp' };
      events.push(
        `downtime ramp: no progress in round ${last.round}: downtime limit raised from ${fromMs} to ${toMs} ms` +
          (toMs >= o.downtimeRamp.maxMs ? ' (the ramp is at its maximum)' : ''),
      );
    } else if (o.onStall === 'double-downtime' && fromMs < MAX_DOWNTIME_LIMIT_MS) {
      const toMs = doubledLimit(fromMs);
      out.downtime = { round: last.round, fromMs, toMs, cause: 'double-downtime' };
      events.push(`no progress in round ${last.round}: downtime limit doubled to ${toMs} ms`);
    }
    if (out.downtime) next = { ...next, downtimeLimitMs: out.downtime.toMs };
  }
  out.state = next;
  return out;
}
