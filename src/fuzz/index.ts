/** Hostile-input fuzzing of every parser (docs/reliability.md): the targets and the driver for one target. */

export {
  checkAnswer,
  exchange,
  fuzzHttpApi,
  fuzzRequest,
  type HttpExchange,
  type HttpFuzzOptions,
} from './http.js';
export { fuzzTarget, JSON_FIELDS, mutate, TARGETS, type TargetCounts } from './targets.js';
