/**
 * A program written against livemig's public API, as a user of the installed package writes it. scripts/pack-test.sh
 * copies it into an empty project that installed the packed tarball, type-checks it (tsc --noEmit), compiles and
 * runs it: each step loads something the package must ship (worker threads, the WebAssembly codec, native addons,
 * the CLI that experiments spawn) from node_modules/livemig/dist.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentClient,
  COMPRESSOR_NAMES,
  compressor,
  decodeRle,
  decodeXbzrle,
  encodeRle,
  encodeXbzrle,
  Guest,
  type GuestConfig,
  isZeroPage,
  loadPlanetlabDay,
  type MigrationOptions,
  type MigrationReport,
  parsePolicy,
  runExperiment,
  type SimResult,
  simulate,
  startAgent,
  syntheticWorkload,
  VERSION,
  XBZRLE_ENGINE,
} from 'livemig';
import { FaultProxy } from 'livemig/faults';
import { simulate as simulateFromSubpath } from 'livemig/sim';
import { EventHub } from 'livemig/web';

const MiB = 2 ** 20;
const step = (what: string) => console.log(`pack-test: ${what}`);
const sameBytes = (a: Uint8Array, b: Uint8Array, what: string) => assert.ok(Buffer.from(a).equals(b), what);

step(`livemig ${VERSION}`);

// Codecs: XBZRLE through the WebAssembly SIMD engine (dist/codec, base64 inside), RLE, and the compressors
// (zstd-napi's addon is built by its install script, lz4-napi ships prebuilt binaries).
const old = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
const cur = old.slice();
cur.fill(9, 1000, 1010);
const delta = encodeXbzrle(old, cur, 4096);
assert.ok(delta !== undefined && delta.length < 32, 'XBZRLE encodes a small change in a few bytes');
const page = old.slice();
decodeXbzrle(delta, page);
sameBytes(page, cur, 'XBZRLE decodes what it encoded');
assert.equal(XBZRLE_ENGINE, 'wasm-simd', 'the WebAssembly codec loads from the installed package');
const rle = new Uint8Array(4096);
decodeRle(encodeRle(cur), rle);
sameBytes(rle, cur, 'RLE decodes what it encoded');
assert.ok(isZeroPage(new Uint8Array(4096)));
for (const name of COMPRESSOR_NAMES) {
  const c = compressor(name);
  sameBytes(c.decompress(c.compress(cur), 4096), cur, name);
}
step(`codecs: xbzrle (${XBZRLE_ENGINE}), rle, ${COMPRESSOR_NAMES.join(', ')}`);

// A guest: its vCPUs are worker threads started from dist/guest.
const config: GuestConfig = { ramBytes: 16 * MiB, workload: { name: 'kv' } };
const guest = await Guest.create(config);
guest.resume();
await new Promise((r) => setTimeout(r, 200));
await guest.pause();
assert.ok(
  guest.steps().some((s) => s > 0),
  'the vCPU worker ran',
);
await guest.destroy();
step('guest: vCPU worker thread ran');

// A migration between two agents in this process (the destination's page sink is a worker thread).
const [src, dst] = await Promise.all([
  startAgent({ host: '127.0.0.1', port: 0 }),
  startAgent({ host: '127.0.0.1', port: 0 }),
]);
try {
  const client = new AgentClient(src.address);
  await client.startGuest({ ramBytes: 32 * MiB, workload: { name: 'gap' } }, 'g1');
  const options: Partial<MigrationOptions> = { xbzrle: true };
  const started: MigrationReport = await client.migrate('g1', dst.address, options);
  const report: MigrationReport = await client.follow(started.id);
  assert.equal(report.status, 'completed', report.error?.message);
  assert.equal(report.verified, true);
  step(`migration: ${report.status}, verified, ${report.rounds} rounds, downtime ${report.downtimeMs} ms`);
} finally {
  await Promise.all([src.close(), dst.close()]);
}

// The simulator, from the root and from its subpath.
assert.equal(simulateFromSubpath, simulate);
const sim: SimResult = simulate(syntheticWorkload({ vms: 40, seed: 1 }), {
  mode: 'livemig',
  policy: parsePolicy('lr-mmt'),
  series: false,
});
assert.ok(sim.energyKWh > 0);
step(`simulate: ${sim.vms} VMs, ${sim.energyKWh.toFixed(2)} kWh, ${sim.migrations} migrations`);
// A PlanetLab day bundled in the package (data/planetlab).
const day = await loadPlanetlabDay('20110303');
const cloudsim = simulate(day, { mode: 'cloudsim', policy: parsePolicy('lr-mmt'), series: false });
assert.ok(day.vms > 1000 && cloudsim.energyKWh > 0);
step(`simulate on the bundled day ${day.name}: ${day.vms} VMs, ${cloudsim.energyKWh.toFixed(1)} kWh`);

// An experiment: it spawns two agent processes from the package's dist/cli/bin.js.
const out = mkdtempSync(join(tmpdir(), 'livemig-pack-test-'));
try {
  const exp = await runExperiment('codecs', { tiny: true, out });
  assert.ok(exp.files.length > 0 && exp.results.length > 0);
  step(`runExperiment: ${exp.results.length} cells, ${exp.files.length} files`);
} finally {
  rmSync(out, { recursive: true, force: true });
}

// Subpath-only tools.
const proxy = await FaultProxy.start({ target: '127.0.0.1:9' });
assert.match(proxy.address, /^127\.0\.0\.1:\d+$/);
await proxy.close();
assert.equal(typeof EventHub, 'function');
step('livemig/faults, livemig/web');
step('ok');
