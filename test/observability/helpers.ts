import type { Registry } from 'prom-client';

/** Value of one series of a counter/gauge (or a histogram's `_count`/`_sum` with `suffix`), summed over series matching `labels`. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
  suffix = '',
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  let sum = 0;
  for (const v of values) {
    if (suffix && !(v as { metricName?: string }).metricName?.endsWith(suffix)) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** Collects written chunks as parsed JSON log lines. */
export class LineSink {
  readonly lines: Record<string, unknown>[] = [];
  write(chunk: string): void {
    for (const line of chunk.split('\n'))
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  find(msg: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l.msg === msg);
  }
}
