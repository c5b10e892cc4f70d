/**
 * What the switch-over's threads ran at, as a migration report shows it (the logic: switchover-priority.ts). A leaf
 * without Node modules: the report's types reach the dashboard's browser build.
 */

/** `window`: raised for the paused window; `migration`: for the whole migration; `off`: never raised. */
export type PriorityScope = 'window' | 'migration' | 'off';

export interface SwitchoverPriority {
  /** The nice value they ran at; null when they could not be raised (they ran at their own). */
  nice: number | null;
  /** Threads raised (or found already at or above it). */
  threads: number;
  /** Who raised them (LIVEMIG_SWITCHOVER_PRIORITY). */
  scope: PriorityScope;
  /** Why not, when `nice` is null: the system's error code (EACCES, EPERM), `off`, or `no thread ids`. */
  reason?: string;
}
