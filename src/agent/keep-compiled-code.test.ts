/** An agent keeps its compiled code from its start: its switch-overs run code last run minutes before. */
import { afterEach, describe, expect, it, vi } from 'vitest';

const calls = vi.hoisted(() => ({ keep: 0 }));
vi.mock('../compiled-code.js', () => ({
  keepCompiledCode: () => {
    calls.keep++;
  },
}));

import { type Agent, startAgent } from './agent.js';

let agent: Agent | undefined;
afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

describe('startAgent', () => {
  it('keeps compiled code (V8 bytecode flushing off) before it serves anything', async () => {
    calls.keep = 0;
    agent = await startAgent({ host: '127.0.0.1', port: 0 });
    expect(calls.keep).toBe(1);
  });
});
