/**
 * `livemig cluster` keeps count of its guests, tested from outside the manager: the test itself kills an agent process
 * mid-run (SIGKILL by pid, not the run's own --kill-host drill) and the report must account for every guest it took
 * down; a guest stopped behind the manager's back, or started a second time on another host, stops the run with an
 * error naming it. Tiny runs (3 hosts, 4 VMs of 16 MiB, 1-s intervals): PABFD puts the four VMs on one host and the
 * run has nothing to migrate, so what each test does to a host is what decides the outcome.
 */
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent/index.js';
import {
  type ClusterEvent,
  type ClusterOptions,
  type ClusterView,
  guestConfig,
  QUICK_CLUSTER,
  runCluster,
} from '../src/cluster/index.js';

const TINY: ClusterOptions = {
  ...QUICK_CLUSTER,
  hosts: 3,
  vms: 4,
  ramMiB: [16, 16],
  durationSec: 30 * 60,
  speed: 300,
};

/** Runs TINY and calls `act` once, on the first interval event, with the view at that moment. */
async function runAndAct(act: (view: ClusterView) => Promise<void>) {
  let acted: Promise<void> | undefined;
  const events: ClusterEvent[] = [];
  const run = runCluster(TINY, (e) => {
    events.push(e);
    if (e.kind === 'interval' && !acted && e.view) acted = act(e.view);
  });
  const settled = await run.then(
    (report) => ({ report, error: undefined }),
    (error: Error & { code?: string }) => ({ report: undefined, error }),
  );
  await acted;
  return { ...settled, events };
}

const busiest = (v: ClusterView) =>
  v.hosts.filter((h) => h.alive).sort((a, b) => b.guests.length - a.guests.length)[0]!;

describe('cluster: every guest accounted for', () => {
  it('an agent killed from outside mid-run: reported, its guests accounted for as lost with it', async () => {
    let victim: { index: number; guests: string[] } | undefined;
    const { report, error, events } = await runAndAct(async (v) => {
      const h = busiest(v);
      victim = { index: h.index, guests: h.guests.map((g) => g.guest) };
      process.kill(h.pid, 'SIGKILL');
    });
    expect(error).toBeUndefined();
    const r = report!;
    expect(victim!.guests.length).toBeGreaterThan(0);
    expect(r.killed.map((k) => k.host)).toEqual([victim!.index]);
    expect(r.hosts[victim!.index]!.alive).toBe(false);
    // Exactly the guests it held are lost with it; every other guest runs on a live host.
    expect([...r.killed[0]!.guests].sort()).toEqual([...victim!.guests].sort());
    for (const vm of r.vms) {
      if (victim!.guests.includes(vm.guest)) expect(vm.state).toBe('lost-with-host');
      else if (vm.state !== 'unplaced') {
        expect(vm.state).toBe('running');
        expect(r.hosts[vm.finalHost]!.alive).toBe(true);
      }
    }
    expect(events.some((e) => e.kind === 'host-killed' && e.message.includes(`host ${victim!.index}`))).toBe(
      true,
    );
    // The live view said so too.
    const last = events.at(-1)!.view!;
    expect(last.killed[0]!.host).toBe(victim!.index);
    expect(last.totals.lost).toBe(victim!.guests.length);
  }, 240_000);

  it('a guest stopped behind the manager’s back stops the run: lost, named', async () => {
    let gone = '';
    const { error } = await runAndAct(async (v) => {
      const h = busiest(v);
      gone = h.guests[0]!.guest;
      const c = new AgentClient(h.address);
      await c.stopGuest(gone);
      c.close();
    });
    expect(error?.code).toBe('GUEST_NOT_FOUND');
    expect(error?.message).toContain(`guest ${gone} is on no host`);
  }, 240_000);

  it('a guest started a second time on another host stops the run: duplicated, named', async () => {
    let twin = '';
    const { error } = await runAndAct(async (v) => {
      const h = busiest(v);
      twin = h.guests[0]!.guest;
      const other = v.hosts.find((x) => x.alive && x.index !== h.index)!;
      const c = new AgentClient(other.address);
      await c.startGuest(guestConfig(0, 16, 'twolf'), twin);
      c.close();
    });
    expect(error?.code).toBe('OWNER_UNKNOWN');
    expect(error?.message).toMatch(new RegExp(`guest ${twin} runs on hosts \\d and \\d: duplicated`));
  }, 240_000);
});
