/**
 * Issue 17, point 3: while a guest is paused for its switch-over in an agent, the agent's API requests and its power
 * meter's samples wait until the window closes (bounded), so the frames the switch-over waits for are not read
 * behind them. The window is opened here by hand (src/paused-window.ts is process-wide); the real switch-overs that
 * open it are tested in src/migration/paused-window.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { disposeAfterEach } from '../src/migration/testing/index.js';
import { HOLD_MAX_MS, openPausedWindow } from '../src/paused-window.js';
import { PowerMeter } from '../src/power/meter.js';
import { linearPowerModel } from '../src/power/models.js';
import { exampleReport } from '../src/web/answer-examples.js';
import { EventHub } from '../src/web/events.js';
import { localAgent } from './helpers.js';

const track = disposeAfterEach();

describe('paused window in an agent', () => {
  it('an API request that arrives inside it is answered once it closes (or after the hold cap)', async () => {
    const { agent, client } = await localAgent();
    track(agent);
    await client.status(); // warm: the first request pays for the connection
    const w = track(openPausedWindow());
    const sentAt = performance.now();
    const answered = client.status().then(() => performance.now());
    await new Promise((r) => setTimeout(r, 30));
    const closedAt = performance.now();
    w.close();
    const answeredAt = await answered;
    // Held until the close; only a machine stalled past the hold cap may answer before it.
    expect(answeredAt >= closedAt || answeredAt - sentAt >= HOLD_MAX_MS).toBe(true);
  });

  it("the power meter's sample due inside it is taken once it closes, once", () => {
    vi.useFakeTimers();
    const meter = new PowerMeter({
      host: { pid: process.pid, guests: () => [] },
      model: linearPowerModel(50, 100),
      raplRoot: null,
      intervalMs: 10,
    });
    const samples: number[] = [];
    meter.onSample((s) => samples.push(s.at));
    meter.start();
    try {
      vi.advanceTimersByTime(10);
      expect(samples).toHaveLength(1);
      const w = track(openPausedWindow());
      vi.advanceTimersByTime(30); // three ticks fall inside the window
      expect(samples).toHaveLength(1);
      w.close();
      vi.advanceTimersByTime(0);
      expect(samples).toHaveLength(2);
      vi.advanceTimersByTime(10);
      expect(samples).toHaveLength(3);
    } finally {
      meter.stop();
    }
  });

  it("the dashboard's ticker does not sample a quiet migration inside it, and does once it closes", () => {
    vi.useFakeTimers();
    const hub = new EventHub(() => ({}), { minSampleMs: 0, tickMs: 10 });
    try {
      const r = exampleReport({ id: 'm1' });
      r.status = 'active';
      hub.progress(r, { cap: 0, steps: () => [0] });
      expect(hub.samples('m1')).toHaveLength(1);
      const w = track(openPausedWindow());
      vi.advanceTimersByTime(40);
      expect(hub.samples('m1')).toHaveLength(1);
      w.close();
      vi.advanceTimersByTime(0);
      expect(hub.samples('m1')).toHaveLength(2);
    } finally {
      hub.close();
    }
  });
});
