/** Fuzz target for the trace reader (src/trace): a small valid trace in each compression, mutated. */
import { TRACE_COMPRESSIONS, TraceReader } from '../trace/format.js';
import { resealTrace } from '../trace/reseal.js';
import { TraceWriter } from '../trace/writer.js';

import { mutate, type Target } from './mutate.js';

/** A small valid trace (snapshot + two intervals) in each compression, built once. */
let traces: Uint8Array[] | undefined;
function validTraces(): Uint8Array[] {
  traces ??= TRACE_COMPRESSIONS.map((compression) => {
    const w = new TraceWriter({
      pageSize: 512,
      intervalMs: 10,
      method: 'page-compare',
      compression,
      chunkPages: 2,
      meta: { program: 'fuzz', command: [] },
    });
    const page = (n: number, b: number) => new Uint8Array(n * 512).fill(b);
    w.add(0, [0, 1, 3], page(3, 7));
    w.add(10, [1, 2], page(2, 1));
    w.add(20, [], page(0, 0));
    return w.finish(4).trace!;
  });
  return traces;
}

/** The trace reader (src/trace): open a mutated file and read every record's pages and deltas. */
export const traceTarget: Target = {
  name: 'trace file (TraceReader)',
  run: (rng) => {
    const valid = validTraces()[rng.int(TRACE_COMPRESSIONS.length)]!;
    const k = rng.int(10);
    // Half the mutations get their checksums recomputed, to reach the bounds checks behind them.
    const input =
      k === 0
        ? Buffer.from(rng.bytes(rng.int(200)))
        : k < 5
          ? mutate(rng, valid)
          : resealTrace(mutate(rng, valid));
    const r = TraceReader.open(input);
    for (let i = 0; i < r.records.length; i++) r.forEachPage(i, () => {});
  },
};
