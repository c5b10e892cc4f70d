/** The agent: hosts guests, runs and accepts migrations, serves the control API (docs/agent.md). */

/** A migration as the status and `GET /v1/migrations` list it (the report is at `GET /v1/migrations/ID`). */
export type { MigrationSummary } from '../web/index.js';
export {
  Agent,
  type AgentOptions,
  type GuestInfo,
  type GuestStatus,
  splitHostPort,
  startAgent,
} from './agent.js';
export {
  API_TOKEN_ENV,
  apiTokenForAgent,
  clientApiToken,
  newApiToken,
  readApiToken,
  writeNewToken,
} from './auth.js';
export { type CertFiles, type CertsOptions, MAX_CERT_DAYS, makeCerts } from './certs.js';
export { AgentClient, type AgentStatus } from './client.js';
export {
  EVACUATION_ORDERS,
  type EvacuationCandidate,
  type EvacuationMove,
  type EvacuationOrder,
  type EvacuationReport,
  type EvacuationRequest,
  planEvacuation,
} from './evacuate.js';
/** What the control API refused (its HTTP status and code); AgentClient throws it for the API's own codes. */
export { HttpError } from './http.js';
export { checkListenSecurity, isLoopback, loadTls, type TlsMaterial } from './tls.js';
