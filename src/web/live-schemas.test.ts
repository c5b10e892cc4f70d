/**
 * The event stream's events as the dashboard page checks them (live-schemas.ts): what the agent's EventHub sends
 * passes, events of another shape are refused naming the field (the page drops them instead of drawing garbage).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { exampleReport, exampleStatus } from './answer-examples.js';
import { EventHub } from './events.js';
import type { LiveSample } from './live-events.js';
import { parseEvent } from './live-schemas.js';

const report = () => exampleReport({ id: 'm1' });
const STATUS = exampleStatus();

let hub: EventHub | undefined;
afterEach(() => hub?.close());

/** Two samples from the agent's own sampler, so the schema is checked against what it really sends. */
function realSamples(): LiveSample[] {
  hub = new EventHub(() => STATUS, { minSampleMs: 0, tickMs: 10_000 });
  const r = report();
  const g = { cap: 0, steps: () => [1] };
  hub.progress(r, g);
  r.status = 'active';
  r.phase = 'precopy';
  r.transferredBytes = 4096;
  r.totalTimeMs = 10;
  hub.progress(r, g);
  return [...hub.samples('m1')];
}

describe("the dashboard's event checks", () => {
  it("accepts the agent's events and keeps their fields", () => {
    const samples = realSamples();
    expect(samples).toHaveLength(2);
    const r = { ...report(), status: 'completed', phase: 'done' };
    const events = {
      hello: { status: STATUS, series: [{ id: 'm1', samples }] },
      status: STATUS,
      progress: { id: 'm1', sample: samples[1], report: r },
      end: { id: 'm1', report: r },
    } as const;
    for (const [name, data] of Object.entries(events)) {
      const got = parseEvent(name as keyof typeof events, JSON.stringify(data));
      expect(got).toEqual({ ok: true, value: JSON.parse(JSON.stringify(data)) });
    }
  });

  it('refuses an event of another shape, naming the first field that does not match', () => {
    const [, sample] = realSamples();
    const r = report();
    const cases: [Parameters<typeof parseEvent>[0], unknown, string][] = [
      ['hello', { status: STATUS }, 'series'],
      ['hello', { status: { ...STATUS, guests: 'none' }, series: [] }, 'status.guests'],
      ['status', { ...STATUS, outgoing: [{ ...r, status: 'exploded' }] }, 'outgoing.0.status'],
      ['status', { ...STATUS, guests: [{ ...STATUS.guests[0], steps: null }] }, 'guests.0.steps'],
      ['progress', { id: 'm1', sample: { ...sample, phase: 'warp' }, report: r }, 'sample.phase'],
      [
        'progress',
        { id: 'm1', sample, report: { ...r, transferredBytes: '1 GiB' } },
        'report.transferredBytes',
      ],
      ['end', { id: 'm1', report: { ...r, xbzrle: null } }, 'report.xbzrle'],
      ['end', null, '(body)'],
    ];
    for (const [name, data, field] of cases) {
      const got = parseEvent(name, JSON.stringify(data));
      expect(got.ok).toBe(false);
      expect(got.ok ? '' : got.field).toBe(field);
    }
    expect(parseEvent('end', '{not json')).toMatchObject({ ok: false, field: '(body)', problem: 'not JSON' });
  });
});
