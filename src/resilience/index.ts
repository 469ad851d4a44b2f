/**
 * `herald/resilience`: composable resilience policies (circuit breaker, retry, timeout, bulkhead,
 * fallback, hedging), rate limiters, load shedding and a degradation manager. No driver imports.
 */
export * from './errors.js';
export * from './clock.js';
export type { Dispose, EventSource } from './events.js';
export type {
  CommonOptions,
  ExecuteContext,
  ExecuteOptions,
  MetricEvent,
  Policy,
  PolicyKind,
  ResilienceMetrics,
} from './policy.js';
export { wrap, PolicyWrap, type PolicyLike } from './wrap.js';
export * from './circuit-breaker/index.js';
export * from './retry/index.js';
export * from './timeout.js';
export * from './bulkhead.js';
export * from './fallback.js';
export * from './hedge.js';
export * from './rate-limit/types.js';
export * from './rate-limit/token-bucket.js';
export * from './rate-limit/sliding-window.js';
export * from './rate-limit/adaptive-throttle.js';
export * from './rate-limit/load-shedder.js';
export * from './rate-limit/keyed.js';
export * from './rate-limit/lru.js';
export * from './rate-limit/policy.js';
export * from './degradation.js';
