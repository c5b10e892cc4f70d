/**
 * A data centre in miniature (docs/cluster.md): the simulator's consolidation policies run on real agents with
 * real live migrations, and the simulator checked against it. Only the CLI imports this folder.
 */

export type {
  ClusterView,
  ClusterViewFlight,
  ClusterViewGuest,
  ClusterViewHost,
  ClusterViewMigration,
} from '../web/index.js';
export {
  type Agreement,
  type AgreementRow,
  type MigrationModelCheck,
  type SimVariant,
  TARGETS,
} from './agreement.js';
export {
  measurementResiduals,
  type NoiseDistribution,
  noiseDistribution,
  noiseMarkdown,
} from './agreement-noise.js';
export {
  type RepeatAgreement,
  type RepeatRow,
  type RepeatRun,
  repeatAgreement,
  repeatMarkdown,
} from './agreement-repeat.js';
export { parseSavedCluster, rerunAgreement, rerunSetting, type SavedCluster } from './agreement-rerun.js';
export { agreementMarkdown, agreementSection, agreementText } from './agreement-table.js';
export { CLUSTER_PATH, type ClusterDashboard, startClusterDashboard } from './dashboard.js';
export {
  type Divergence,
  decisionDivergence,
  divergenceMarkdown,
  type RoundDivergence,
} from './divergence.js';
export {
  type ClusterLinkFaults,
  ClusterLinks,
  clusterLinkSchema,
  type LinkPair,
  type LinkStats,
  linkDelayBetween,
  parseClusterLink,
  parseLinkDelaySpec,
} from './links.js';
export {
  type ClusterMetrics,
  type ClusterMigration,
  type ComparisonRow,
  compareWithSim,
  MetricsAccumulator,
} from './metrics.js';
export {
  ClusterNetwork,
  NetnsError,
  netnsUnavailable,
  spawnNetnsAgents,
  sweepStaleNetworks,
} from './netns.js';
export {
  type ClusterOptions,
  DEFAULT_CLUSTER,
  DEFAULT_LINK_RATE,
  QUICK_CLUSTER,
  SCHEDULING_INTERVAL,
} from './options.js';
export { clusterHtmlReport } from './report.js';
export {
  type ClusterEvent,
  type ClusterHost,
  type ClusterInterval,
  type ClusterReport,
  type ClusterVm,
  checkClusterOptions,
  runCluster,
  type VmState,
} from './run.js';
export { CLUSTER_WORKLOADS, clusterWorkload, guestConfig, guestRamMiB } from './workload.js';
