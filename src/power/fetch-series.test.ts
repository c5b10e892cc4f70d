/** GET /v1/power of another agent: over node:http (no fetch, whose first use compiles undici), errors typed. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HostPower } from './host.js';
import { fetchPowerSeries } from './remote-energy.js';

const servers: Server[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function serve(status: number, body: string): Promise<{ address: string; urls: string[] }> {
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, urls };
}

describe('fetchPowerSeries', () => {
  it("reads another agent's series without fetch", async () => {
    const host = new HostPower({ guests: () => [], raplRoot: null });
    host.meter.sample();
    const { address, urls } = await serve(200, JSON.stringify(host.series()));
    const spy = vi.spyOn(globalThis, 'fetch');
    const s = await fetchPowerSeries(address, 1234, 'i7-920');
    expect(spy).not.toHaveBeenCalled();
    expect(s.samples.length).toBe(1);
    expect(urls).toEqual(['/v1/power?since=1234&sample=1&model=i7-920']);
  });

  it('says which agent answered what when the answer is not a series', async () => {
    const bad = await serve(503, '{}');
    await expect(fetchPowerSeries(bad.address, 0)).rejects.toMatchObject({ code: 'PROTOCOL' });
    const notJson = await serve(200, 'nope');
    await expect(fetchPowerSeries(notJson.address, 0)).rejects.toMatchObject({ code: 'PROTOCOL' });
  });
});
