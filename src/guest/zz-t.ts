import { Guest } from './index.js';

const T = () => performance.now();
let t = T();
const g = await Guest.create({ ramBytes: 4 << 20, vcpus: 2, workload: { name: 'idle' } });
console.log('create', (T() - t).toFixed(0));
t = T();
await g.runToStep(300);
console.log('run', (T() - t).toFixed(0));
t = T();
await g.pause();
console.log('pause', (T() - t).toFixed(0));
t = T();
await g.runToStep(3300);
console.log('run2', (T() - t).toFixed(0));
t = T();
await g.destroy();
console.log('destroy', (T() - t).toFixed(0));
t = T();
