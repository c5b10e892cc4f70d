import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { childCliEnv } from './test/built-cli.js';
import { LongestFirst } from './test/sequencer.js';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Migration tests spawn processes and worker threads; the machines have 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    // Child processes run the built CLI when dist/ is current (test/built-cli.ts).
    env: childCliEnv(root),
    // The longest files first, so that the two workers finish together (test/sequencer.ts).
    sequence: { sequencer: LongestFirst },
  },
});
