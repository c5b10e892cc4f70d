/**
 * The workloads a vCPU can run, by name. See docs/guest.md for what each models and its parameters.
 */
import type { WorkloadName } from '../config.js';
import { Kv } from './kv.js';
import { KvRead } from './kv-read.js';
import { TraceReplay } from './trace.js';
import { Twolf } from './twolf.js';
import type { Workload, WorkloadContext } from './types.js';
import { Writer } from './writer.js';

export type { Workload, WorkloadContext } from './types.js';

export function createWorkload(name: WorkloadName, ctx: WorkloadContext): Workload {
  switch (name) {
    case 'idle':
      return new Writer(ctx, { flavour: 'text', allocFrontier: false, scan: false });
    case 'gap':
      return new Writer(ctx, { flavour: 'binary', allocFrontier: true, scan: false });
    case 'zipf':
      return new Writer(ctx, { flavour: 'text', allocFrontier: false, scan: false });
    case 'seq':
      return new Writer(ctx, { flavour: 'text', allocFrontier: false, scan: true });
    case 'twolf':
      return new Twolf(ctx);
    case 'kv':
      return new Kv(ctx);
    case 'kv-read':
      return new KvRead(ctx);
    case 'trace':
      return new TraceReplay(ctx);
  }
}
