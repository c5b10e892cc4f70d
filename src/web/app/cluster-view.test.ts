import { describe, expect, it } from 'vitest';
import type { ClusterView, ClusterViewHost } from './cluster-view.js';
import { hostState, hostText, parseView, powerColumns, statusLine, timelineBars } from './cluster-view.js';

const host = (over: Partial<ClusterViewHost> = {}): ClusterViewHost => ({
  index: 0,
  type: 'HP ProLiant ML110 G5',
  mips: 5320,
  address: '127.0.0.1:1',
  pid: 42,
  alive: true,
  on: true,
  utilisation: 0.5,
  watts: 110,
  guests: [{ guest: 'vm0', workload: 'twolf', ramMiB: 16, utilisation: 0.4 }],
  ...over,
});

const view = (over: Partial<ClusterView> = {}): ClusterView => ({
  policy: 'THR-MMT-0.8',
  day: '20110306',
  speed: 300,
  interval: 3,
  intervals: 12,
  periodMs: 1000,
  phase: 'running',
  hosts: [host(), host({ index: 1, on: false, watts: 0, utilisation: 0, guests: [] })],
  inFlight: [],
  migrations: [],
  power: [
    { time: 300, watts: 200, activeHosts: 2 },
    { time: 600, watts: 110, activeHosts: 1 },
  ],
  killed: [],
  totals: { migrations: 0, completed: 0, failed: 0, lost: 0, running: 1 },
  ...over,
});

describe('cluster view', () => {
  it('says what each host is doing', () => {
    expect(hostState(host())).toBe('on');
    expect(hostState(host({ on: false }))).toBe('off');
    expect(hostState(host({ alive: false }))).toBe('dead');
    expect(hostText(host()).figures).toBe('50 % of 5320 MIPS · 110 W · 1 guest');
    expect(hostText(host({ alive: false })).figures).toBe('agent dead (pid 42) · 5320 MIPS');
  });

  it('sums the cluster in one line', () => {
    expect(statusLine(view())).toBe(
      'THR-MMT-0.8 on 20110306 at 300× · interval 3/12 · 1/2 hosts on · 110 W · 1 guests running · ' +
        '0 migrations in flight · 0 completed, 0 failed · running',
    );
    expect(statusLine(view({ phase: 'failed', error: 'guest vm3 is on no host' }))).toMatch(
      /· failed: guest vm3 is on no host$/,
    );
  });

  it('power in trace hours', () => {
    expect(powerColumns(view())).toEqual([
      [300 / 3600, 600 / 3600],
      [200, 110],
      [2, 1],
    ]);
  });

  it('one timeline bar per migration, from the end of its interval, wall time × speed long; in flight to now', () => {
    const v = view({
      migrations: [
        {
          guest: 'vm1',
          from: 0,
          to: 1,
          interval: 2,
          status: 'completed',
          totalTimeMs: 6000,
          downtimeMs: 300,
          transferredBytes: 16 * 1024 * 1024,
          verified: true,
          traceTime: 1800,
        },
      ],
      inFlight: [{ guest: 'vm2', from: 1, to: 0, interval: 3, startedAt: 10_000 }],
    });
    const { bars, rows, hours } = timelineBars(v, 22_000);
    expect(rows).toEqual(['vm1', 'vm2']);
    expect(bars[0]).toMatchObject({
      start: 600 / 3600,
      end: (600 + 1800) / 3600,
      row: 0,
      status: 'completed',
    });
    expect(bars[0]!.label).toBe('vm1: host 0 → 1, completed and verified, 6.0 s, downtime 300 ms, 16.0 MiB');
    // 12 s in flight × 300 = 3600 trace s.
    expect(bars[1]).toMatchObject({ start: 900 / 3600, end: (900 + 3600) / 3600, status: 'in flight' });
    expect(hours).toBe(Math.max(1, (900 + 3600) / 3600));
  });

  it('checks a view event before the page believes it', () => {
    const ok = parseView(JSON.stringify(view()));
    expect(ok.ok).toBe(true);
    const bad = parseView(JSON.stringify({ ...view(), hosts: [{ ...host(), watts: 'lots' }] }));
    expect(bad).toEqual({
      ok: false,
      field: 'hosts.0.watts',
      problem: expect.stringMatching(/^invalid_type/),
    });
    expect(parseView('{').ok).toBe(false);
  });
});
