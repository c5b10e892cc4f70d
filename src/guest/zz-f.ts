import { Guest } from './index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const g = await Guest.create({ ramBytes: 4 << 20, workload: { name: 'zipf' } });
g.resume();
async function m(label: string) {
  await sleep(40);
  const s0 = g.steps()[0]!,
    c0 = g.cpuTimeMs()[0]!,
    t0 = performance.now();
  await sleep(500);
  const dt = performance.now() - t0;
  console.log(
    label,
    'rate',
    (((g.steps()[0]! - s0) / dt) * 1000).toFixed(0),
    'cpu',
    ((g.cpuTimeMs()[0]! - c0) / dt).toFixed(2),
  );
}
for (const f of [1, 0.5, 1, 0.5, 0.25, 1]) {
  g.setFrequency(f);
  await m('f=' + f);
}
await g.destroy();
