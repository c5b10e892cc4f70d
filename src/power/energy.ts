/**
 * What the power side reports about one migration: energy figures, the closed-loop budget account, energy per
 * GiB, the series around it, per-VM progress. The migration report carries these (`MigrationReport.energy`,
 * src/migration/stats.ts re-exports the names); they live here so power never imports migration.
 */

/** One energy figure over the migration: `measured` from real counters (RAPL), `modelled` from CPU time. */
export interface EnergyFigure {
  joules: number;
  averageWatts: number;
  peakWatts: number;
  durationMs: number;
  label: 'measured' | 'modelled';
}

/** A VM on the source host: its progress rate (steps/s) before and during the migration (the QoS cost). */
export interface VmProgress {
  guestId: string;
  migrating: boolean;
  stepsPerSecBefore: number;
  stepsPerSecDuring: number;
  slowdown: number;
}

/** One decision of the closed-loop power controller (src/power/controller.ts). */
export interface PowerDecisionRow {
  /** Since the migration started, ms. */
  atMs: number;
  /** DVFS frequency (null: a model without DVFS). */
  ghz: number | null;
  /** CAP on the migrating VM (0 = none). */
  cap: number;
  windowWatts: number;
  predictedWatts: number;
  reachable: boolean;
  reason: string;
}

/** How the source host kept its power budget during the migration (windowed average, as RAPL's PL1 promises). */
export interface PowerBudgetReport {
  budgetWatts: number;
  windowMs: number;
  /** False when even the floor setting was predicted over the budget at some point: said plainly, not hidden. */
  reachable: boolean;
  /** Time the windowed average was over the budget (windows inside the migration), ms. */
  overBudgetMs: number;
  /** ∫ max(0, P − budget) dt over the migration, J. */
  overBudgetJoules: number;
  /** Highest windowed average, and when its window ended (ms since the start). */
  worstWindow: { endMs: number; watts: number };
  /** Average of the first window (the start transient). */
  firstWindowWatts: number;
  decisions: PowerDecisionRow[];
}

/** What one migration cost in energy, modelled with `model` (J per migration, J per GiB moved). */
export interface MigrationEnergyCost {
  model: string;
  /** Bytes the migration put on the wire. */
  bytesMoved: number;
  /** Energy over the migration on each host, J (destination null when it could not be asked). */
  sourceJoules: number;
  destinationJoules: number | null;
  /** Joules per GiB moved. */
  sourceJoulesPerGiB: number;
  destinationJoulesPerGiB: number | null;
  /** Above each host's power just before the migration (what the migration itself added), J. */
  sourceExtraJoules: number;
  destinationExtraJoules: number | null;
}

/** A point of the power series around the migration (source host, modelled W; ~100 ms samples while migrating). */
export interface PowerPoint {
  /** Since the migration started, ms (negative: before). */
  atMs: number;
  watts: number;
  utilisation: number;
}

/** Power during the migration (filled by the agent's power meter, src/power; see docs/power.md). */
export interface MigrationEnergy {
  /** Host power model the modelled figures come from. */
  model: string;
  source: EnergyFigure;
  /** The destination agent's figure over the same window; null when it could not be asked. */
  destination: EnergyFigure | null;
  /** The source machine's real energy counters (RAPL), where it has them. */
  sourceMeasured: EnergyFigure | null;
  capping: {
    mode: string;
    control: string;
    powerCapWatts: number;
    /** DVFS frequency the host ran at during the migration (null = top state). */
    dvfsGhz: number | null;
    /** Every CAP the migrating VM was given (0 = none). */
    caps: number[];
  };
  vms: VmProgress[];
  /** The closed-loop controller's account, when a budget (--power-cap) was set with a capping mode. */
  budget?: PowerBudgetReport;
  /** Energy per migration and per GiB moved, both hosts. */
  cost?: MigrationEnergyCost;
  /** Source power from 2 s before the start to the end (the transient, Jeong et al. 2013). */
  series?: PowerPoint[];
}
