/**
 * Worker-thread entry of one vCPU: builds the vCPU's memory view and workload from the shared buffers, runs the
 * workload's init on a fresh guest, then the scheduling loop (vcpu.ts) until told to stop. The loop never
 * yields to the event loop, so main-thread messages are pulled synchronously with receiveMessageOnPort.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { kernelThreadId } from '../thread-id.js';
import { type ResolvedGuestConfig, vcpuShare } from './config.js';
import type { Corpus } from './content.js';
import { PARKED_GEN, type SharedControl } from './control.js';
import { type SharedGuestMemory, StopSignal, VcpuMemory } from './memory.js';
import { Rng } from './rng.js';
import { Vcpu, type VcpuState } from './vcpu.js';
import { createWorkload } from './workloads/index.js';
import type { SharedWriteProtect } from './write-protect.js';

export interface VcpuWorkerData {
  config: ResolvedGuestConfig;
  index: number;
  memory: SharedGuestMemory;
  control: SharedControl;
  /** Run the workload's init (fresh guest) or not (destination: RAM arrives by migration). */
  init: boolean;
  port: MessagePort;
  /** The content corpus of the guest's seed (shared memory, built once on the main thread). */
  corpus: Corpus;
  /** The `trace` workload's recording (shared memory), else null. */
  trace: Uint8Array | null;
}

export type MainToWorker =
  | { type: 'load'; seq: number; state: VcpuState }
  /** A live snapshot's write protection on (buffers) or off (null): applied before the vCPU's next step. */
  | { type: 'protect'; seq: number; shared: SharedWriteProtect | null };
export type WorkerToMain =
  /** `registers`: the names of the registers, in the order a state slot holds their values (control.ts). */
  | { type: 'ready'; tid: number; registers: string[] }
  | { type: 'parked'; gen: number; state: VcpuState }
  | { type: 'fault'; page: number }
  | { type: 'error'; message: string; stack?: string };

const data = workerData as VcpuWorkerData;
const post = (m: WorkerToMain) => parentPort!.postMessage(m);

/** Not Linux: -1, and the main thread falls back to the vCPU's own clock. */
const threadId = (): number => kernelThreadId() ?? -1;

function main(): void {
  const { config, index } = data;
  const params = config.workload.params;
  const workload = createWorkload(config.workload.name, {
    params,
    pageSize: config.pageSize,
    ...vcpuShare(config, index),
    corpus: data.corpus,
    ...(data.trace ? { trace: data.trace } : {}),
  });
  let vcpu: Vcpu | null = null;
  const mem = new VcpuMemory(
    data.memory,
    (page) => post({ type: 'fault', page }),
    () => vcpu?.stopping() ?? false,
  );
  const rng = Rng.seeded(config.seed, index);
  vcpu = new Vcpu(
    index,
    data.control.ctl,
    data.control.vcpu,
    rng,
    workload,
    mem,
    params,
    config.dvfsStall,
    {
      parked: (gen, state) => {
        // On the vCPU's own port (the main thread can take it synchronously), then the shared word that says so.
        data.port.postMessage({ type: 'parked', gen, state } satisfies WorkerToMain);
        const ctl = new Int32Array(data.control.ctl);
        Atomics.store(ctl, PARKED_GEN + index, gen);
        Atomics.notify(ctl, PARKED_GEN + index);
      },
      drain: (seq) => drain(vcpu!, mem, seq),
    },
    data.control.slots,
  );
  post({ type: 'ready', tid: threadId(), registers: Object.keys(workload.registers()) });
  if (data.init) workload.init(mem, rng);
  mem.newDirty = 0; // init writes are not history (the guest resets its dirty log after them too)
  vcpu.run();
}

function drain(vcpu: Vcpu, mem: VcpuMemory, seq: number): void {
  // The main thread posts before it bumps the sequence word, so the message is already queued.
  for (let tries = 0; tries < 1000; tries++) {
    const got = receiveMessageOnPort(data.port);
    if (!got) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      continue;
    }
    const m = got.message as MainToWorker;
    if (m.type === 'load') {
      vcpu.step = m.state.step;
      vcpu.rng = new Rng(m.state.rng);
      vcpu.workload.setRegisters(m.state.registers);
    } else {
      mem.protect(m.shared);
    }
    vcpu.applied(m.seq);
    if (m.seq === seq) return;
  }
  throw new Error(`vCPU ${data.index}: message ${seq} announced but never arrived`);
}

try {
  main();
} catch (err) {
  if (!(err instanceof StopSignal)) {
    const e = err instanceof Error ? err : new Error(String(err));
    post({ type: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  }
}
