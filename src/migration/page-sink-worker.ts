/**
 * The destination's page-sink thread: applies checked PAGES payloads to the incoming guest's RAM, in the order the
 * source sent them, and writes each page's CRC into the shared ledger. It exists so that the first-touch page
 * faults of fresh guest RAM (~3 µs a page here) and the copies run beside the connection thread, which only reads
 * the socket and verifies frames.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Compressor, compressor } from '../codec/index.js';
import { pageCrc, zeroPageCrc } from './ledger.js';
import { decodePageInto } from './page-decode.js';
import type { SinkBatch, SinkInit, SinkReply } from './page-sink.js';
import { PAGE_ENTRY_HEADER_BYTES, PageEncoding } from './protocol.js';

const init = workerData as SinkInit;
const port = parentPort!;
const views = init.blocks.map((b) => new Uint8Array(b));
const ledger = new Uint32Array(init.ledger);
const { pageSize, pagesPerBlock } = init;
const zeroCrc = zeroPageCrc(pageSize);
const compressors = new Map<number, Compressor>();
for (const [encoding, name] of init.compressors) compressors.set(encoding, compressor(name));

function page(p: number): Uint8Array {
  const b = Math.floor(p / pagesPerBlock);
  const at = (p - b * pagesPerBlock) * pageSize;
  return views[b]!.subarray(at, at + pageSize);
}

/** Applies one batch; its entries were bound-checked and checksummed by the connection thread. */
function apply(batch: SinkBatch): number {
  const payload = new Uint8Array(batch.buffer, batch.offset, batch.length);
  const dv = new DataView(batch.buffer, batch.offset, batch.length);
  const crcs = batch.crcs;
  let offset = 4;
  for (let i = 0; i < batch.count; i++) {
    const p = dv.getUint32(offset);
    const encoding = payload[offset + 4]! as PageEncoding;
    const length = dv.getUint32(offset + 5);
    offset += PAGE_ENTRY_HEADER_BYTES;
    const data = payload.subarray(offset, offset + length);
    offset += length;
    const target = page(p);
    if (encoding === PageEncoding.ZERO) {
      target.fill(0);
      ledger[p] = zeroCrc;
      continue;
    }
    if (encoding === PageEncoding.RAW) {
      target.set(data);
      ledger[p] = crcs[i]!; // the CRC of these very bytes, computed while checking the frame
      continue;
    }
    decodePageInto(p, encoding, data, target, compressors);
    ledger[p] = pageCrc(target);
  }
  return batch.count;
}

port.on('message', (batch: SinkBatch) => {
  let reply: SinkReply;
  try {
    reply = { seq: batch.seq, pages: apply(batch), buffer: batch.buffer };
  } catch (err) {
    reply = {
      seq: batch.seq,
      pages: 0,
      buffer: batch.buffer,
      error: err instanceof Error ? err.message : String(err),
    };
  }
  // Hand the frame buffer back so the connection thread can reuse it for the next large frame.
  port.postMessage(reply, batch.transfer ? [batch.buffer] : []);
});
