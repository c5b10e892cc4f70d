/** The engines experiment's livemig migration CPU: the agent process's CPU less its vCPU threads' (measure.ts). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PowerSample, PowerSeries } from '../power/index.js';
import { HostPower } from '../power/index.js';
import { AgentMigrationCpu } from './measure.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('AgentMigrationCpu', () => {
  it("subtracts the vCPU threads' CPU of the samples taken inside the window, and only those", async () => {
    const host = new HostPower({ guests: () => [], raplRoot: null });
    host.meter.sample();
    const base = host.series();
    const proto = base.samples[0]!;
    const at0 = Date.now();
    const sample = (at: number, vcpuCpuMs: number): PowerSample => ({ ...proto, at, vcpuCpuMs });
    let samples: PowerSample[] = [sample(at0 - 500, 1000), sample(at0, 7)];
    const server = createServer((_req, res) => {
      const s: PowerSeries = { ...base, samples };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cpu = await AgentMigrationCpu.start(address, process.pid);
    // Burn some CPU in this process (the "agent"), then two samples inside the window with 30 + 12 ms of vCPU.
    const t = performance.now();
    let x = 0;
    while (performance.now() - t < 60) x += Math.sqrt(x + 1);
    samples = [...samples, sample(at0 + 100, 30), sample(at0 + 200, 12)];
    const r = await cpu.stop();
    expect(x).toBeGreaterThan(0);
    expect(r.vcpuMs).toBe(42);
    expect(r.totalMs).toBeGreaterThan(0);
    expect(r.migrationMs).toBe(Math.max(0, r.totalMs - 42));
  });
});
