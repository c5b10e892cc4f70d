import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./compiled-code.fixtures.ts', import.meta.url));

/** Of the probe's functions' bytecode, the share left after collections that flush whatever V8 may flush. */
function probe(keep: boolean): number {
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--stress-flush-code', '--import', 'tsx', fixture, ...(keep ? ['keep'] : [])],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const { base, before, after } = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
  expect(before! - base!).toBeGreaterThan(10_000); // the functions were compiled
  return (after! - base!) / (before! - base!);
}

describe('keepCompiledCode', () => {
  it('without it V8 drops the bytecode of functions that did not run (the probe can fail)', () => {
    expect(probe(false)).toBeLessThan(0.2);
  }, 90_000);

  it('with it the bytecode stays: a switch-over does not compile its code again in the paused window', () => {
    expect(probe(true)).toBeGreaterThan(0.6);
  }, 90_000);
});
