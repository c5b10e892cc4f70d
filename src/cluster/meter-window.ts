/**
 * One host's measurement window: its power meter's samples after `since` (the end of the last window), the last of
 * them closed by the agent as it answered (`GET /v1/power?sample=1`). The window runs from `since` to that sample's
 * end, whatever the meter's own ticks (every 250 ms, not in step with the scheduling intervals): it used to end at the
 * planner's clock and count the ticks inside, so an interval measured 9, 10 or 11 ticks of CPU over 10 ticks of wall
 * time, a ±10 % error on a VM now and then.
 */

export interface MeterSample {
  readonly at: number;
  readonly intervalMs: number;
  readonly guests: readonly { readonly id: string; readonly cpuMs: number }[];
}

export interface MeterWindow {
  /** Each guest's kernel CPU ms in the window. */
  readonly cpu: Map<string, number>;
  /** Where the window ends (the last sample's end, epoch ms): the next window's `since`. */
  readonly end: number;
  /** The window's length, ms; 0 when `since` is 0 (the first call only opens the window). */
  readonly spanMs: number;
}

export function meterWindow(samples: readonly MeterSample[], since: number): MeterWindow {
  const cpu = new Map<string, number>();
  let end = since;
  for (const s of samples) {
    if (s.at <= since) continue;
    end = Math.max(end, s.at);
    for (const g of s.guests) cpu.set(g.id, (cpu.get(g.id) ?? 0) + g.cpuMs);
  }
  return { cpu, end, spanMs: since > 0 ? end - since : 0 };
}
