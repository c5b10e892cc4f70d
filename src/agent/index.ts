/** The agent: hosts guests, runs and accepts migrations, serves the control API (docs/agent.md). */
export {
  Agent,
  type AgentOptions,
  type GuestInfo,
  type GuestStatus,
  splitHostPort,
  startAgent,
} from './agent.js';
export { AgentClient } from './client.js';
