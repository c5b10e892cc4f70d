/**
 * The live dashboard an agent serves (`livemig agent --dashboard`): the event stream behind it (`GET /v1/events`),
 * the static files of the page, and the payload types both sides share. The page itself is in `app/` and is
 * bundled by `npm run build:web` (build.ts, not exported: it needs esbuild, a build-time tool).
 */

export {
  type ClusterView,
  type ClusterViewFlight,
  type ClusterViewGuest,
  type ClusterViewHost,
  type ClusterViewMigration,
  VIEW_MIGRATIONS,
} from './cluster-events.js';
export { EventHub, type EventHubOptions, type GuestGauge, type PowerGauge } from './events.js';
export type {
  EndEvent,
  EnergyView,
  HelloEvent,
  LiveSample,
  ProgressEvent,
  SeriesSnapshot,
} from './live-events.js';
export { readEnergy } from './live-events.js';
export {
  DASHBOARD_PATH,
  type DashboardListener,
  type DashboardPlan,
  dashboardDir,
  isLoopback,
  listenDashboard,
  planDashboard,
  serveDashboard,
} from './static.js';
export { type MigrationSummary, migrationSummary } from './summary.js';
