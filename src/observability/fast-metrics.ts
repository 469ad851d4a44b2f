import type { Metric, Registry } from 'prom-client';

type LabelValues = Readonly<Record<string, string>>;

interface SampleValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * Base of the per-event metrics: a prom-client metric (registered in a prom-client `Registry`,
 * exposed, merged and reset by prom-client) whose series are plain objects the caller keeps, so
 * recording is a field update. prom-client's own children hash their label object and validate it
 * on every call (≈ 200–300 ns each, several per event); these cost a few ns. prom-client still does
 * the registry, the text format and the default metrics (ADR 0404).
 */
abstract class SeriesMetric<S> {
  readonly aggregator = 'sum' as const;
  abstract readonly type: 'counter' | 'histogram';
  /** Mutable: prom-client renames counters for OpenMetrics output. */
  name: string;
  readonly help: string;
  private readonly labelNames: readonly string[];
  protected readonly all = new Map<string, { readonly labels: LabelValues; readonly series: S }>();

  constructor(options: {
    name: string;
    help: string;
    labelNames?: readonly string[];
    registers: readonly Registry[];
  }) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    for (const r of options.registers) r.registerMetric(this as unknown as Metric);
  }

  /**
   * The series for these label values, created on first use. Keep it: it is the hot path. Label
   * values must be bounded by the caller (see BoundedLabel).
   */
  labels(values: LabelValues = {}): S {
    let key = '';
    for (const n of this.labelNames) {
      const v = values[n];
      if (typeof v !== 'string') throw new TypeError(`${this.name}: label "${n}" is missing`);
      key += `${v}\u0000`;
    }
    for (const n of Object.keys(values)) {
      if (!this.labelNames.includes(n)) throw new TypeError(`${this.name}: unknown label "${n}"`);
    }
    let entry = this.all.get(key);
    if (!entry) {
      entry = { labels: { ...values }, series: this.create() };
      this.all.set(key, entry);
    }
    return entry.series;
  }

  /** prom-client's Metric contract: the current values. */
  async get(): Promise<{
    name: string;
    help: string;
    type: 'counter' | 'histogram';
    aggregator: 'sum';
    values: SampleValue[];
  }> {
    const values: SampleValue[] = [];
    for (const { labels, series } of this.all.values()) this.sample(labels, series, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Zeroes every series in place: callers hold them, so they must stay the same objects. */
  reset(): void {
    for (const { series } of this.all.values()) this.zero(series);
  }

  protected abstract create(): S;
  protected abstract zero(series: S): void;
  protected abstract sample(labels: LabelValues, series: S, out: SampleValue[]): void;
}

/** One counter series. */
export class CounterSeries {
  value = 0;

  inc(by = 1): void {
    if (!(by >= 0)) throw new RangeError(`a counter only goes up, got ${by}`);
    this.value += by;
  }
}

/** A Prometheus counter for per-event hot paths; see {@link SeriesMetric}. */
export class FastCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter' as const;

  protected create(): CounterSeries {
    return new CounterSeries();
  }

  protected zero(series: CounterSeries): void {
    series.value = 0;
  }

  protected sample(labels: LabelValues, series: CounterSeries, out: SampleValue[]): void {
    out.push({ labels: { ...labels }, value: series.value });
  }
}

/** One histogram series: a count per bucket (the last is +Inf), their sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`histogram value must be finite, got ${value}`);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** A Prometheus histogram for per-event hot paths; see {@link SeriesMetric}. */
export class FastHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(options: {
    name: string;
    help: string;
    labelNames?: readonly string[];
    buckets: readonly number[];
    registers: readonly Registry[];
  }) {
    super(options);
    const bounds = [...options.buckets].sort((a, b) => a - b);
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || b === bounds[i - 1])) {
      throw new TypeError(`${options.name}: buckets must be distinct finite numbers`);
    }
    this.bounds = bounds;
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected zero(series: HistogramSeries): void {
    series.counts.fill(0);
    series.sum = 0;
    series.count = 0;
  }

  protected sample(labels: LabelValues, series: HistogramSeries, out: SampleValue[]): void {
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += series.counts[i]!;
      out.push({
        metricName: `${this.name}_bucket`,
        labels: { le: this.bounds[i]!, ...labels },
        value: cumulative,
      });
    }
    out.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count });
    out.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: series.sum });
    out.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: series.count });
  }
}
