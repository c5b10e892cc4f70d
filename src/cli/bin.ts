#!/usr/bin/env node
import { main } from './main.js';

// A reader that stops early (`livemig --help | head -1`, `grep -q`) closes the pipe: that is the reader's choice,
// not a failure of ours, so stop quietly as other Unix tools do instead of dying on an unhandled EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `livemig: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 70;
  },
);
