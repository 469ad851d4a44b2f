/**
 * `herald/anomaly`: anomaly detection on event flow (publish rate, handling rate, error ratio,
 * latency) against a weekly-seasonal robust baseline, in-process and as generated Prometheus rules.
 * Start with {@link AnomalyMonitor} (reads a prom-client registry) or feed an
 * {@link AnomalyDetector} yourself.
 */
export {
  ANOMALY_DEFAULTS,
  SIGNALS,
  median,
  robustScore,
  isAnomalous,
  flowStoppedMinRate,
  type SignalName,
  type SignalDefinition,
  type Direction,
  type Score,
  type ScoreOptions,
} from './definition.js';
export {
  AnomalyDetector,
  type AnomalyDetectorOptions,
  type AnomalyEvent,
  type BaselineKind,
  type SeriesStatus,
} from './detector.js';
export { AnomalyMonitor, type AnomalyMonitorOptions } from './monitor.js';
export { ResilienceStateMetrics } from './resilience-metrics.js';
