/**
 * Keeps V8 from dropping the compiled form of functions that have not run for a while.
 *
 * By default V8 flushes the bytecode of a function that has not run over five major garbage collections
 * (`--flush-bytecode`, `--bytecode-old-age=5`); its next call compiles it again from source. An agent runs a
 * switch-over's code once per migration, minutes apart, with many collections in between, so that code was compiled
 * again inside the paused window, the guest stopped: traced with µs stamps in both agents of `experiment engines`'
 * post-copy config on the 2-core machine, the destination spent 0.15–0.27 ms between decoding the vCPU state and
 * starting its load, and 0.1–0.2 ms checking one vCPU's registers, against 0.01–0.03 ms each with bytecode kept
 * (docs/engines.md, post-copy's fifth pass). Warming before the pause (switchover-warm.ts) covers only the code it
 * calls. The cost of keeping it: the bytecode of every function that ever ran, a few MB for an agent.
 */
import { setFlagsFromString } from 'node:v8';

let kept = false;

/** From now on this process keeps the bytecode of every function it compiles (idempotent). */
export function keepCompiledCode(): void {
  if (kept) return;
  setFlagsFromString('--no-flush-bytecode');
  kept = true;
}
