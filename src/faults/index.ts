/** Fault injection for migrations: a user-space proxy that delays, loses, stalls, throttles and cuts a link. */
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
