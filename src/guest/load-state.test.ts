/**
 * loadState's config check, which runs in a switch-over's paused window on the destination: a state carrying this
 * guest's own resolved config (what a migration sends) is not resolved again; any other config is resolved and
 * compared as before, so a state of another guest is still refused.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type GuestConfig, resolveConfig, sameConfig, WORKLOAD_NAMES } from './config.js';
import { Guest } from './guest.js';

const resolves = vi.hoisted(() => ({ count: 0 }));
vi.mock('./config.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./config.js')>();
  return {
    ...real,
    resolveConfig: (...args: Parameters<typeof real.resolveConfig>) => {
      resolves.count++;
      return real.resolveConfig(...args);
    },
  };
});

const MiB = 1024 * 1024;
const guests: Guest[] = [];
afterEach(async () => {
  await Promise.all(guests.splice(0).map((g) => g.destroy()));
});

describe('a resolved config resolves to itself (what lets loadState skip resolving its own)', () => {
  it('every synthetic workload, defaults and given params, through JSON', () => {
    for (const name of WORKLOAD_NAMES) {
      for (const config of [
        { ramBytes: 4 * MiB, workload: { name } },
        {
          ramBytes: 8 * MiB,
          vcpus: 2,
          seed: 7,
          blockBytes: 2 * MiB,
          workload: { name, params: { workingSetBytes: 3 * MiB, writeRate: 500 } },
        },
      ] as GuestConfig[]) {
        const resolved = resolveConfig(config);
        const again = resolveConfig(JSON.parse(JSON.stringify(resolved)) as GuestConfig);
        expect(again).toEqual(resolved);
        expect(JSON.stringify(again)).toBe(JSON.stringify(resolved));
        expect(sameConfig(again, resolved)).toBe(true);
      }
    }
  });
});

describe('loadState: the config checked once', () => {
  const config: GuestConfig = { ramBytes: 2 * MiB, vcpus: 2, workload: { name: 'kv' } };

  async function pair() {
    const source = await Guest.create(config);
    guests.push(source);
    await source.runToStep([200, 300]);
    const dest = await Guest.createIncoming(config);
    guests.push(dest);
    return { state: JSON.parse(JSON.stringify(source.state())), dest };
  }

  it("a state with this guest's own resolved config (as a migration sends it) is not resolved again", async () => {
    const { state, dest } = await pair();
    resolves.count = 0;
    dest.loadState(state);
    expect(resolves.count).toBe(0);
    expect(dest.steps()).toEqual([200, 300]);
  });

  it('the same config in another form (unresolved) is resolved, compared and accepted', async () => {
    const { state, dest } = await pair();
    resolves.count = 0;
    dest.loadState({ ...state, config });
    expect(resolves.count).toBe(1);
    expect(dest.steps()).toEqual([200, 300]);
  });

  it('another config is refused, resolved or not', async () => {
    const { state, dest } = await pair();
    const other = resolveConfig({ ...config, seed: 2 });
    expect(() => dest.loadState({ ...state, config: other })).toThrow(/different config/);
    expect(() => dest.loadState({ ...state, config: { ...config, vcpus: 1 } })).toThrow(/different config/);
    expect(() => dest.loadState({ ...state, config: { ...state.config, ramBytes: 4 * MiB } })).toThrow(
      /different config/,
    );
  });
});
