/**
 * `herald/observability`: Prometheus metrics, OpenTelemetry tracing and pino logs for Herald.
 * Start with {@link createObservability}.
 */
export {
  createObservability,
  type Observability,
  type ObservabilityOptions,
  type MetricsOptions,
} from './manager.js';
export { EventMetrics, EVENT_DURATION_BUCKETS, type EventMetricsOptions } from './metrics.js';
export {
  EventTracing,
  activeTraceIds,
  SPAN_STATE_KEY,
  type TracingOptions,
  type TraceExporterChoice,
  type SpanExporterLike,
  type HeraldTracerProvider,
} from './tracing.js';
export { EventLogging, createLogger, type LoggingOptions } from './logging.js';
export { HttpMetrics, HTTP_DURATION_BUCKETS, UNMATCHED_ROUTE, type HttpMetricsOptions } from './http.js';
export { GrpcMetrics, GRPC_DURATION_BUCKETS, type GrpcMetricsOptions } from './rpc.js';
export { CacheMetrics, DbMetrics, DB_DURATION_BUCKETS } from './helpers.js';
export { BoundedLabel, OTHER } from './labels.js';
export { SagaMetrics, SagaTracing, sagaTraceMetadata, SAGA_DURATION_BUCKETS } from './saga.js';
