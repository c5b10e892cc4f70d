/**
 * `SimOptions.switchOff: 'step'`: a host emptied by migrations stays on, idle, until the next scheduling step.
 *
 * CloudSim switches a host off the instant its last VM leaves, so a drained host costs nothing from the migration's
 * completion on. A manager that powers hosts down in its control loop — `livemig cluster`'s finds a host empty at the
 * next measurement — pays its idle power until then: for a 300-s interval and a migration of a minute, four minutes
 * of idle power (about 6 Wh on the PlanetLab hosts) per host switched off. The state here is which hosts were on at
 * the last step; the accounting bills a host on at that step through the next one (accounting.ts).
 */
import type { SimOptions } from '../config.js';
import type { SimState } from './state.js';

/** `SimOptions.switchOff` with its default: `step` in livemig mode, `instant` in cloudsim mode (CloudSim's). */
export function switchOffOf(o: SimOptions): 'instant' | 'step' {
  return o.switchOff ?? (o.mode === 'livemig' ? 'step' : 'instant');
}

/** Records which hosts hold VMs now, at a scheduling step (or the start). No-op unless `switchOff` is `step`. */
export function markStep(s: SimState): void {
  if (!s.stepSwitchOff) return;
  for (let h = 0; h < s.H; h++) s.onAtStep[h] = s.hostOn[h]!;
}
