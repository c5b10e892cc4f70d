/**
 * QMP's envelopes as the client reads them from QEMU, each through a zod schema: the greeting, an event, an answer
 * (`return` or `error`). A message of none of these shapes is a QmpProtocolError, never a field read off `unknown`.
 * The results of individual commands stay typed by the caller (QmpCommands); the envelope around them is checked.
 */
import { z } from 'zod';
import type { QmpEvent, QmpGreeting } from './qmp.js';

const count = z.number().int().nonnegative();
const greeting = z.object({
  QMP: z.looseObject({
    version: z.looseObject({
      qemu: z.looseObject({ major: count, minor: count, micro: count }),
      package: z.string(),
    }),
    capabilities: z.array(z.string()),
  }),
});
const event = z.looseObject({
  event: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
  timestamp: z.looseObject({ seconds: z.number(), microseconds: z.number() }).optional(),
});
const id = z.union([z.string(), z.number()]);
const returned = z.looseObject({ id: id.optional(), return: z.unknown() });
const refused = z.looseObject({
  id: id.optional(),
  error: z.looseObject({ class: z.string(), desc: z.string() }),
});

export type QmpMessage =
  | { kind: 'greeting'; greeting: QmpGreeting }
  | { kind: 'event'; event: QmpEvent }
  | { kind: 'return'; id: string | undefined; value: unknown }
  | { kind: 'error'; id: string | undefined; errorClass: string; desc: string }
  /** An answer of neither shape: it fails its command only (found by its id), the stream goes on. */
  | { kind: 'malformed'; id: string | undefined };

/** One QMP message (already JSON.parse'd) by its shape, or a sentence saying what it is not. */
export function parseQmpMessage(msg: unknown): QmpMessage | string {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'QMP message is not an object';
  if ('QMP' in msg) {
    const g = greeting.safeParse(msg);
    return g.success ? { kind: 'greeting', greeting: g.data } : 'malformed QMP greeting';
  }
  if ('event' in msg) {
    const e = event.safeParse(msg);
    if (!e.success) return 'malformed QMP event';
    return {
      kind: 'event',
      event: {
        event: e.data.event,
        data: e.data.data ?? {},
        timestamp: e.data.timestamp ?? { seconds: 0, microseconds: 0 },
      },
    };
  }
  const key = (v: string | number | undefined) => (v === undefined ? undefined : String(v));
  if ('return' in msg) {
    const r = returned.safeParse(msg);
    if (r.success) return { kind: 'return', id: key(r.data.id), value: r.data.return };
  } else {
    const e = refused.safeParse(msg);
    if (e.success)
      return { kind: 'error', id: key(e.data.id), errorClass: e.data.error.class, desc: e.data.error.desc };
  }
  const anyId = id.safeParse((msg as { id?: unknown }).id);
  return { kind: 'malformed', id: anyId.success ? String(anyId.data) : undefined };
}
