/**
 * An agent started by another livemig process (`livemig run`, the demo, the experiments) goes away with it: its
 * stdin is a pipe from the parent, and the end of that pipe (the parent exited, crashed or was SIGKILLed) stops the
 * agent as SIGTERM would. The kernel closes the pipe whatever the parent's death, so no agent is left running as an
 * orphan with nobody to stop it.
 */

/** Resolves when this process's stdin reaches its end or fails (the parent that holds its other end is gone). */
export function whenParentGone(): Promise<void> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    const gone = () => {
      // The parent read our stdout and stderr too: what we still log must not fail the shutdown (EPIPE).
      for (const out of [process.stdout, process.stderr]) out.on('error', () => undefined);
      resolve();
    };
    stdin.once('end', gone);
    stdin.once('close', gone);
    stdin.once('error', gone);
    // Read (and drop) whatever comes, so 'end' is seen.
    stdin.on('data', () => undefined);
    stdin.resume();
  });
}

/**
 * Calls `stop` once the parent is gone, and exits anyway `graceMs` later if stopping hangs: nobody is left to stop
 * this agent any other way.
 */
export function stopWithParent(stop: () => void, graceMs = 10_000): void {
  void whenParentGone().then(() => {
    stop();
    setTimeout(() => process.exit(1), graceMs).unref();
  });
}
