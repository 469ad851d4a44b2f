import { Counter, Gauge, type Registry } from 'prom-client';
import type { HealthCheck } from '../health/types.js';
import { ConfigError } from '../core/errors.js';
import type { SignalName } from './definition.js';
import { AnomalyDetector, type AnomalyDetectorOptions, type AnomalyEvent } from './detector.js';

/** Options of {@link AnomalyMonitor}. */
export interface AnomalyMonitorOptions extends AnomalyDetectorOptions {
  /** The registry Herald's event metrics are in (`createObservability({ metrics: { registry } })`). */
  readonly registry: Registry;
  /**
   * Where the monitor's own metrics (anomaly_score, anomaly_alerts_firing, anomaly_alerts_total)
   * go; default `registry`. `false`: none.
   */
  readonly metricsRegistry?: Registry | false;
  /** Called on every alert state change (also available through `onEvent`). */
  readonly onEvent?: (event: AnomalyEvent) => void;
  /** Clock, ms since the epoch; for tests. Default `Date.now`. */
  readonly now?: () => number;
}

/** Cumulative counters of one series at one step. */
interface Totals {
  published: number;
  handled: number;
  errors: number;
  durationSum: number;
  durationCount: number;
}

type Sample = Map<string, { labels: Record<string, string>; totals: Totals }>;

interface MetricJson {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Record<string, unknown>;
    readonly metricName?: string;
  }[];
}

/**
 * Runs an {@link AnomalyDetector} on the metrics Herald already keeps: every `stepSeconds` it
 * reads `events_published_total`, `events_handled_total` and `events_handling_duration_seconds`
 * from the registry, turns them into window rates, ratios and mean latency, and scores them.
 * Alerts are reported through `onEvent`, as metrics, and as a non-critical health check, so it
 * works where no Prometheus runs.
 *
 * @example
 * const monitor = new AnomalyMonitor({ registry, onEvent: (e) => log.warn(e, 'anomaly') });
 * monitor.start();
 * health.add(monitor.healthCheck());
 */
export class AnomalyMonitor {
  readonly detector: AnomalyDetector;
  private readonly registry: Registry;
  private readonly now: () => number;
  /** Samples of the cumulative counters, one per step, covering one window. */
  private readonly samples: { step: number; sample: Sample }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly score: Gauge<string> | undefined;
  private readonly firingGauge: Gauge<string> | undefined;
  private readonly alertsTotal: Counter<string> | undefined;

  constructor(options: AnomalyMonitorOptions) {
    if (!options || typeof options.registry?.getMetricsAsJSON !== 'function')
      throw new ConfigError('registry', 'a prom-client Registry holding Herald event metrics is required');
    const { registry, metricsRegistry, onEvent, now, ...detectorOptions } = options;
    this.detector = new AnomalyDetector(detectorOptions);
    this.registry = registry;
    this.now = now ?? Date.now;
    if (onEvent) this.detector.onEvent(onEvent);
    const target = metricsRegistry === undefined ? registry : metricsRegistry;
    if (target) {
      const registers = [target];
      const detector = this.detector;
      this.score = new Gauge({
        name: 'anomaly_score',
        help: 'Robust anomaly score (value − baseline) / scale of each watched series',
        labelNames: ['signal', 'group', 'event_type', 'baseline'],
        registers,
        collect() {
          this.reset();
          for (const s of detector.status())
            if (s.score)
              this.set(
                {
                  signal: s.signal,
                  group: s.labels['group'] ?? '',
                  event_type: s.labels['event_type'] ?? '',
                  baseline: s.baseline ?? '',
                },
                s.score.score,
              );
        },
      });
      this.firingGauge = new Gauge({
        name: 'anomaly_alerts_firing',
        help: 'Anomaly alerts firing now, by kind (anomaly, flow-stopped) and signal',
        labelNames: ['kind', 'signal'],
        registers,
        collect() {
          this.reset();
          for (const a of detector.firing()) this.inc({ kind: a.kind, signal: a.signal });
        },
      });
      this.alertsTotal = new Counter({
        name: 'anomaly_alerts_total',
        help: 'Anomaly alerts that started firing, by kind and signal',
        labelNames: ['kind', 'signal'],
        registers,
      });
      this.detector.onEvent((e) => {
        if (e.state === 'firing') this.alertsTotal?.inc({ kind: e.kind, signal: e.signal });
      });
    }
  }

  /** Subscribes to alert state changes; returns the unsubscribe function. */
  onEvent(listener: (event: AnomalyEvent) => void): () => void {
    return this.detector.onEvent(listener);
  }

  /** Samples every `stepSeconds` until {@link stop}. The timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.detector.stepSeconds * 1000);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Reads the registry once and evaluates every series at the current step. `start` calls this on
   * its timer; call it yourself to drive the monitor from your own scheduler.
   */
  async tick(): Promise<void> {
    // One read at a time: a slow collect() must not interleave two samples.
    if (this.running) return this.running;
    this.running = this.sampleAndEvaluate().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * A non-critical check: degraded while an anomaly alert fires (the report names them), so
   * /health shows it without failing readiness.
   */
  healthCheck(name = 'anomalies'): HealthCheck {
    return {
      name,
      critical: false,
      cacheTtlMs: 0,
      check: async () => {
        const firing = this.detector.firing();
        const warming = this.detector.status().filter((s) => s.warmingUp).length;
        if (firing.length === 0) return { details: { firing: 0, warmingUp: warming } };
        return {
          status: 'degraded',
          message: firing
            .slice(0, 5)
            .map(
              (a) =>
                `${a.kind} ${a.signal} ${Object.values(a.labels).join('/')}${a.score ? ` score ${a.score.score.toFixed(1)}` : ''}`,
            )
            .join('; '),
          details: { firing: firing.length, warmingUp: warming },
        };
      },
    };
  }

  private async sampleAndEvaluate(): Promise<void> {
    const at = this.now();
    const stepS = this.detector.stepSeconds;
    const step = Math.round(at / 1000 / stepS);
    const last = this.samples.at(-1);
    if (last && last.step >= step) return;
    const sample = readTotals((await this.registry.getMetricsAsJSON()) as unknown as MetricJson[]);
    this.samples.push({ step, sample });
    const windowSteps = this.detector.windowSeconds / stepS;
    while (this.samples.length > 0 && this.samples[0]!.step < step - windowSteps) this.samples.shift();
    const then = this.samples[0]!;
    // A value needs a sample exactly one window back (the first window after start has none).
    if (then.step !== step - windowSteps) return;
    const windowS = this.detector.windowSeconds;
    for (const [key, { labels, totals }] of sample) {
      const before = then.sample.get(key);
      const d = (k: keyof Totals): number => totals[k] - (before?.[`totals`][k] ?? 0);
      // A counter that went down was reset (a new registry): skip this window.
      if ((['published', 'handled', 'errors', 'durationSum', 'durationCount'] as const).some((k) => d(k) < 0))
        continue;
      const observe = (signal: SignalName, value: number | undefined): void =>
        this.detector.observe(signal, labels, value, step * stepS * 1000);
      if (key.startsWith('p\u0000')) observe('publish_rate', d('published') / windowS);
      else {
        observe('handling_rate', d('handled') / windowS);
        observe('error_ratio', d('handled') > 0 ? d('errors') / d('handled') : undefined);
        observe('latency', d('durationCount') > 0 ? d('durationSum') / d('durationCount') : undefined);
      }
    }
  }
}

/** Sums Herald's event counters into publish series (by event type) and consumer series (by group and event type). */
function readTotals(metrics: readonly MetricJson[]): Sample {
  const out: Sample = new Map();
  const at = (kind: 'p' | 'c', labels: Record<string, unknown>): Totals => {
    const kept: Record<string, string> =
      kind === 'p'
        ? { event_type: String(labels['event_type'] ?? '') }
        : { group: String(labels['group'] ?? ''), event_type: String(labels['event_type'] ?? '') };
    const key = `${kind}\u0000${Object.values(kept).join('\u0000')}`;
    let entry = out.get(key);
    if (!entry)
      out.set(
        key,
        (entry = {
          labels: kept,
          totals: { published: 0, handled: 0, errors: 0, durationSum: 0, durationCount: 0 },
        }),
      );
    return entry.totals;
  };
  for (const m of metrics) {
    if (m.name === 'events_published_total') for (const v of m.values) at('p', v.labels).published += v.value;
    else if (m.name === 'events_handled_total')
      for (const v of m.values) {
        const status = v.labels['status'];
        if (status !== 'success' && status !== 'error') continue; // skipped duplicates did no work
        const t = at('c', v.labels);
        t.handled += v.value;
        if (status === 'error') t.errors += v.value;
      }
    else if (m.name === 'events_handling_duration_seconds')
      for (const v of m.values) {
        if (v.metricName === 'events_handling_duration_seconds_sum') at('c', v.labels).durationSum += v.value;
        else if (v.metricName === 'events_handling_duration_seconds_count')
          at('c', v.labels).durationCount += v.value;
      }
  }
  return out;
}
