/**
 * `herald/health`: health checks, Kubernetes probes (/live, /ready, /health) and graceful
 * shutdown. Driver checks (SQLite, PostgreSQL, Redis, NATS) live in `herald/<driver>`.
 */
export { HealthChecker, HealthCheckTimeoutError, aggregate } from './checker.js';
export type { CheckOutcome, CheckResult, HealthCheck, HealthReport, HealthStatus } from './types.js';
export {
  breakerCheck,
  deadLetterGrowthCheck,
  httpCheck,
  lagCheck,
  probeCheck,
  type BreakerCheckOptions,
  type BreakerState,
  type CheckSettings,
  type DeadLetterGrowthOptions,
  type HttpCheckOptions,
  type LagCheckOptions,
  type LagSource,
  type ProbeCheckOptions,
} from './checks.js';
export { EventLoopMonitor, type EventLoopMonitorOptions } from './event-loop.js';
export { HealthProbes, type HealthProbesOptions, type LifecyclePhase, type ProbeResponse } from './probes.js';
export {
  probeHandler,
  registerFastifyProbes,
  type FastifyLike,
  type FastifyReplyLike,
  type ProbePaths,
} from './handlers.js';
export {
  Lifecycle,
  installShutdownHandlers,
  signalExitCode,
  type LifecycleOptions,
  type Stoppable,
} from './lifecycle.js';
