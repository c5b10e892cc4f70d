/**
 * GET /v1/power's body as another agent sends it, checked before its samples are summed: a peer that answers
 * something else is a PROTOCOL error, not NaN watts in a report.
 */
import { z } from 'zod';
import { MigrationError } from '../errors.js';
import type { PowerSeries } from './meter.js';

const label = z.enum(['measured', 'modelled']);
const num = z.number().finite();
const guestSample = z.object({ id: z.string(), cpuMs: num, steps: num, cap: num, frequency: num });
const sample = z.object({
  at: num,
  intervalMs: num,
  vcpuCpuMs: num,
  mainCpuMs: num,
  otherCpuMs: num,
  utilisation: num,
  dvfsState: num,
  ghz: num.nullable(),
  watts: num,
  raplWatts: num.nullable(),
  guests: z.array(guestSample),
});
const series = z.object({
  model: z.string(),
  capacityCores: num,
  rapl: z.boolean(),
  labels: z.object({ cpuMs: label, utilisation: label, watts: label, raplWatts: label }),
  samples: z.array(sample),
});

/** `body` (GET /v1/power of the agent at `address`) as a PowerSeries, or PROTOCOL naming the first bad field. */
export function parsePowerSeries(body: unknown, address: string): PowerSeries {
  const r = series.safeParse(body);
  if (r.success) return r.data;
  const at = r.error.issues[0]?.path.map(String).join('.') || '(body)';
  throw new MigrationError('PROTOCOL', `GET /v1/power of ${address}: not a power series (at ${at})`, {
    field: at,
  });
}
