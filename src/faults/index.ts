/**
 * Fault injection for migrations: a user-space proxy that delays, loses, stalls, throttles and cuts a link
 * (proxy.ts), and the fault matrix that runs every strategy × phase × fault through it (matrix.ts).
 */
export {
  type Alternative,
  allCells,
  type Cell,
  type CellResult,
  cellId,
  type Expectation,
  expected,
  FAULTS,
  type FaultName,
  type Holder,
  MATRIX_GUEST,
  MATRIX_OPTIONS,
  MATRIX_STRATEGIES,
  type MatrixOptions,
  outcomeLabel,
  PHASES,
  type PhaseName,
  phasesOf,
  phaseTrigger,
  runCell,
} from './matrix.js';
export {
  type FaultAction,
  type FaultEvent,
  FaultProxy,
  type FaultProxyOptions,
  type FaultTrigger,
  FrameWatcher,
  type LinkFaults,
  NO_FAULTS,
  type ProxyStats,
} from './proxy.js';
