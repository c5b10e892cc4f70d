import { afterEach, describe, expect, it, vi } from 'vitest';
import { FRAME_HEADER_BYTES, FRAME_TRAILER_BYTES } from '../protocol/index.js';
import { destroyTestGuests, FakeDestination, sourceRun, testGuest } from '../testing/index.js';
import { runSource } from './index.js';
import { LIVE_FRAME_MS, liveFramePayload } from './live-frames.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('live frames under --max-bandwidth', () => {
  it('hold about LIVE_FRAME_MS of the limit, never below 64 KiB (or two pages), never above the full size', () => {
    expect(liveFramePayload(0, MiB, 4096)).toBe(MiB); // unlimited: full-size frames
    expect(liveFramePayload(32 * MiB, MiB, 4096)).toBe(67_109); // 2 ms of 32 MiB/s
    expect(liveFramePayload(8 * MiB, MiB, 4096)).toBe(64 * KiB); // the floor
    expect(liveFramePayload(256 * MiB, MiB, 4096)).toBe(Math.round((256 * MiB * LIVE_FRAME_MS) / 1000));
    expect(liveFramePayload(4096 * MiB, MiB, 4096)).toBe(MiB);
    expect(liveFramePayload(MiB, 16 * MiB, 2 * MiB)).toBe(4 * MiB + 1024); // huge pages still fit
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await destroyTestGuests();
  });

  it('the engine: live rounds at 32 MiB/s send short frames, the stop-and-copy full-size ones', async () => {
    const guest = await testGuest();
    const data = new Uint8Array(4096).fill(9);
    for (let p = 0; p < guest.ram.pageCount; p++) guest.ram.writePage(p, data);
    // Every page dirty again after round 1, and nothing after: a switch-over with 4 MiB to send while paused.
    const script = [new Uint32Array(0), Uint32Array.from({ length: guest.ram.pageCount }, (_, i) => i)];
    vi.spyOn(guest.dirtyLog, 'sync').mockImplementation(() => script.shift() ?? new Uint32Array(0));
    const d = new FakeDestination({});
    const run = sourceRun(guest, d.connect(), { maxBandwidth: 32 * MiB, maxRounds: 1 });
    const sizes: { phase: string; bytes: number }[] = [];
    const send = run.conn.send.bind(run.conn);
    vi.spyOn(run.conn, 'send').mockImplementation((frame, done) => {
      sizes.push({ phase: run.report.phase, bytes: frame.length });
      return send(frame, done);
    });
    const sendSegments = run.conn.sendSegments.bind(run.conn);
    vi.spyOn(run.conn, 'sendSegments').mockImplementation((segments, length, done) => {
      sizes.push({ phase: run.report.phase, bytes: length });
      return sendSegments(segments, length, done);
    });
    try {
      const report = await runSource(run);
      expect(report.status).toBe('completed');
      expect(report.verified).toBe(true);
      const overhead = FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES;
      const live = sizes.filter((s) => s.phase === 'precopy').map((s) => s.bytes);
      const paused = sizes.filter((s) => s.phase === 'stop-and-copy').map((s) => s.bytes);
      expect(live.length).toBeGreaterThan(16); // 4 MiB of pages in 67 KB frames
      expect(Math.max(...live)).toBeLessThanOrEqual(liveFramePayload(32 * MiB, MiB, 4096) + overhead);
      expect(Math.max(...paused)).toBeGreaterThan(512 * KiB);
    } finally {
      d.close();
    }
  });
});
