import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import {
  createHerald,
  MemoryEventStore,
  MemoryTransport,
  PermanentError,
  type Message,
} from '../../src/index.js';
import { createObservability } from '../../src/observability/index.js';
import { ResilienceStateMetrics } from '../../src/anomaly/index.js';
import { CircuitBreaker, DegradationManager } from '../../src/resilience/index.js';
import { waitUntil } from '../support/wait.js';

export const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
export const RULES = join(DEPLOY, 'prometheus', 'herald-alerts.yml');
export const RULE_TESTS = join(DEPLOY, 'prometheus', 'herald-alerts.test.yml');
export const EXAMPLE_CONFIG = join(DEPLOY, 'prometheus', 'prometheus.example.yml');
export const DASHBOARD = join(DEPLOY, 'grafana', 'herald-overview.json');

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
export const promtoolInstalled = promtool.status === 0;
// Same rule as test/observability/promtool.test.ts: locally a missing promtool skips; under CI it
// must fail (.ci/run installs it with `apt-get install -y prometheus`).
export const promtoolSkip =
  !promtoolInstalled && process.env.CI !== 'true'
    ? 'promtool not installed (apt-get install -y prometheus)'
    : false;

export function runPromtool(
  args: readonly string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Labels Prometheus attaches to every scraped series (the scrape target's). */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance']);

/** Series Prometheus itself writes for every target; not exported by Herald. */
export const SYNTHETIC_SERIES: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['up', new Set<string>()],
]);

// ---------------------------------------------------------------------------------------------
// What Herald actually exports

/** Series name (`x_bucket`, `x_sum`, `x_count` for histograms) → label names seen on it. */
export type Inventory = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * Builds the registry a real service gets from `createObservability` (default metrics on), drives
 * every code path that feeds a metric (publish ok and failed, handler success, retry, dead letter,
 * replay, event store ok and failed, HTTP, gRPC, cache, db), and reads back the series names and
 * their label names from `getMetricsAsJSON()`. A renamed metric or label disappears from here.
 */
export async function heraldInventory(): Promise<{ inventory: Inventory; unexercised: string[] }> {
  const registry = new Registry();
  const obs = createObservability({
    serviceName: 'inventory',
    metrics: { registry, defaultMetrics: true, statsCacheMs: 0 },
    logging: false,
  });

  // A transport that refuses one topic, so publish failures are counted through the real path.
  class RefusingTransport extends MemoryTransport {
    override async publish(topic: string, messages: readonly Message[]): Promise<void> {
      if (topic === 'refused.events') throw new Error('refused');
      return super.publish(topic, messages);
    }
  }
  const herald = obs.instrument(
    await createHerald({
      service: 'inventory',
      transport: new RefusingTransport(),
      stores: { events: obs.eventStore(new MemoryEventStore()) },
    }),
  );
  let flaky = 0;
  let poisoned = true;
  let handled = 0;
  herald.subscribe<{ kind: string }>({
    group: 'inventory-group',
    events: ['inventory.item.moved'],
    retry: { maxAttempts: 3, initialDelayMs: 1, multiplier: 1, maxDelayMs: 1, jitter: false },
    handler: (event) => {
      if (event.payload.kind === 'flaky' && flaky++ < 2) throw new Error('transient');
      if (event.payload.kind === 'poison' && poisoned) throw new PermanentError('poison');
      handled++;
    },
  });
  try {
    await herald.start();
    await herald.publish('inventory.item.moved', { kind: 'ok' });
    await herald.publish('inventory.item.moved', { kind: 'flaky' });
    await herald.publish('inventory.item.moved', { kind: 'poison' });
    await herald.publish('refused.thing.done', {}).then(
      () => {
        throw new Error('the refusing transport accepted a publish');
      },
      () => undefined,
    );
    await waitUntil(
      async () => handled === 2 && (await herald.deadLetters.count()) === 1,
      'handled, retried and dead-lettered',
    );
    poisoned = false;
    await herald.deadLetters.replay({ filter: {} });
    await waitUntil(() => handled === 3, 'replayed dead letter handled');

    const failingStore = obs.eventStore(
      Object.assign(new MemoryEventStore(), {
        append: () => Promise.reject(new Error('disk full')),
      }),
    );
    await failingStore.append([]).catch(() => undefined);

    const server = createServer(obs.http.node((_req, res) => res.end('ok'), ['/items/:id']));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve, reject) =>
      request({ host: '127.0.0.1', port, path: '/items/1' }, (res) => res.resume().on('end', resolve))
        .on('error', reject)
        .end(),
    );
    await new Promise<void>((resolve) => server.close(() => resolve()));

    // Breaker and degradation state, exported by herald/anomaly's ResilienceStateMetrics.
    const resilience = new ResilienceStateMetrics({ registry });
    const breaker = new CircuitBreaker({
      name: 'payments-api',
      metrics: resilience,
      minimumCalls: 1,
      failureThreshold: 1,
    });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    if (breaker.state !== 'open') throw new Error(`the breaker did not open: ${breaker.state}`);
    new DegradationManager({ name: 'checkout', metrics: resilience }).override('partial');

    obs.grpc?.record('server', '/pkg.Svc/Get', 'OK', 0.002);
    obs.cache?.hit('users');
    obs.cache?.miss('users');
    await obs.db?.time('select', 'users', async () => 1);
  } finally {
    await herald.stop();
  }

  const inventory = new Map<string, Set<string>>();
  const unexercised: string[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    const values = metric.values as { metricName?: string; labels: Record<string, unknown> }[];
    const isProcessMetric = /^(nodejs|process)_/.test(metric.name);
    if (values.length === 0 && !isProcessMetric) unexercised.push(metric.name);
    const names =
      String(metric.type) === 'histogram'
        ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`]
        : [metric.name];
    for (const n of names) if (!inventory.has(n)) inventory.set(n, new Set());
    for (const v of values) {
      const set = inventory.get(v.metricName ?? metric.name);
      if (!set) throw new Error(`unexpected series ${v.metricName} of ${metric.name}`);
      for (const label of Object.keys(v.labels)) set.add(label);
    }
  }
  return { inventory, unexercised };
}

// ---------------------------------------------------------------------------------------------
// Rules files

export interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export function loadRules(): Rule[] {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/**
 * Labels of a recorded series, read from its name's level (`job_group_le:...` → job, group, le),
 * the Prometheus naming convention these rules follow.
 */
export function recordedLabels(rules: readonly Rule[]): Map<string, Set<string>> {
  return new Map(
    rules
      .filter((r): r is Rule & { record: string } => r.record !== undefined)
      .map((r) => [r.record, new Set(r.record.split(':')[0]!.split('_'))]),
  );
}

// ---------------------------------------------------------------------------------------------
// PromQL: just enough lexing to find metric names, label matchers and grouping labels

interface Token {
  readonly kind: 'ident' | 'string' | 'number' | 'punct';
  readonly text: string;
}

const OPERATORS = ['=~', '!~', '!=', '==', '<=', '>='];

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let text = '';
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === '\\' && c !== '`') j++;
        text += expr[j];
        j++;
      }
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      out.push({ kind: 'string', text });
      i = j + 1;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(expr[i + 1] ?? ''))) {
      // numbers and durations (0.99, 5m, 1h30m, 1e3, 0x1f)
      const m = /^[0-9a-zA-Z_.]+/.exec(expr.slice(i))!;
      out.push({ kind: 'number', text: m[0] });
      i += m[0].length;
    } else if (/[a-zA-Z_]/.test(c)) {
      const m = /^[a-zA-Z_][a-zA-Z0-9_:]*/.exec(expr.slice(i))!;
      out.push({ kind: 'ident', text: m[0] });
      i += m[0].length;
    } else {
      const two = expr.slice(i, i + 2);
      const op = OPERATORS.includes(two) ? two : c;
      out.push({ kind: 'punct', text: op });
      i += op.length;
    }
  }
  return out;
}

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan', 'Inf', 'NaN']);

export interface SelectorRef {
  readonly metric: string;
  /** Label names used in this selector's matchers (without `__name__`). */
  readonly labels: readonly string[];
}

export interface ExprAnalysis {
  readonly selectors: readonly SelectorRef[];
  /** Label names in by / without / on / ignoring / group_left / group_right clauses. */
  readonly grouping: readonly string[];
}

/** Finds every series selector and grouping label of a PromQL expression. */
export function analyzePromQL(expr: string): ExprAnalysis {
  const t = tokenize(expr);
  const selectors: SelectorRef[] = [];
  const grouping: string[] = [];
  const at = (k: number): Token | undefined => t[k];

  // Reads `{ name op "value", ... }` starting at the `{`; returns the index after `}`.
  const matchers = (k: number, into: { label: string; op: string; value: string }[]): number => {
    k++;
    while (at(k)?.text !== '}') {
      const label = at(k);
      const op = at(k + 1);
      const value = at(k + 2);
      if (label?.kind !== 'ident' || op?.kind !== 'punct' || value?.kind !== 'string')
        throw new Error(`cannot read the label matchers of: ${expr}`);
      into.push({ label: label.text, op: op.text, value: value.text });
      k += 3;
      if (at(k)?.text === ',') k++;
    }
    return k + 1;
  };

  for (let k = 0; k < t.length;) {
    const tok = t[k]!;
    const next = at(k + 1);
    if (tok.kind === 'ident' && GROUPING.has(tok.text)) {
      k++;
      if (at(k)?.text === '(') {
        k++;
        while (at(k) && at(k)!.text !== ')') {
          if (at(k)!.kind === 'ident') grouping.push(at(k)!.text);
          k++;
        }
        k++;
      }
    } else if (tok.kind === 'ident' && (next?.text === '(' || KEYWORDS.has(tok.text))) {
      k++; // a function, or an aggregation without a leading by clause, or a keyword
    } else if (tok.kind === 'ident' && AGGREGATIONS.has(tok.text) && GROUPING.has(next?.text ?? '')) {
      k++;
    } else if (tok.kind === 'ident') {
      const found: { label: string; op: string; value: string }[] = [];
      k = next?.text === '{' ? matchers(k + 1, found) : k + 1;
      selectors.push({ metric: tok.text, labels: found.map((m) => m.label) });
    } else if (tok.text === '{') {
      // A selector without a leading name: `{__name__=~"a|b", job="x"}`.
      const found: { label: string; op: string; value: string }[] = [];
      k = matchers(k, found);
      const name = found.find((m) => m.label === '__name__');
      if (!name || (name.op !== '=' && name.op !== '=~'))
        throw new Error(`a selector without a metric name (or a negative __name__ match) in: ${expr}`);
      const labels = found.filter((m) => m.label !== '__name__').map((m) => m.label);
      for (const metric of name.op === '=' ? [name.value] : name.value.split('|')) {
        if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric))
          throw new Error(`__name__ must list plain metric names, got "${name.value}" in: ${expr}`);
        selectors.push({ metric, labels });
      }
    } else {
      k++;
    }
  }
  return { selectors, grouping };
}

/**
 * Problems with an expression against what is exported: unknown metric names, matchers on labels
 * the metric does not have, and grouping by labels none of its metrics has.
 */
export function checkExpr(expr: string, known: Inventory): string[] {
  const { selectors, grouping } = analyzePromQL(expr);
  const problems: string[] = [];
  const available = new Set(TARGET_LABELS);
  for (const s of selectors) {
    const labels = known.get(s.metric);
    if (!labels) {
      problems.push(`unknown metric ${s.metric}`);
      continue;
    }
    for (const l of labels) available.add(l);
    for (const l of s.labels)
      if (!labels.has(l) && !TARGET_LABELS.has(l)) problems.push(`${s.metric} has no label ${l}`);
  }
  for (const l of grouping)
    if (!available.has(l)) problems.push(`grouping by ${l}, which none of its metrics has`);
  if (selectors.length === 0) problems.push('no metric at all');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Grafana

/** Durations Grafana substitutes for its interval variables; any valid duration parses the same. */
const GRAFANA_INTERVALS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
};

/**
 * Replaces Grafana's variables so the expression is plain PromQL: interval variables by a
 * duration, template variables (always used inside regex matchers here) by `.*`. Returns the
 * template variables it replaced.
 */
export function grafanaToPromQL(expr: string): { promql: string; variables: string[] } {
  const variables: string[] = [];
  const promql = expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    const interval = GRAFANA_INTERVALS[name];
    if (interval) return interval;
    variables.push(name);
    return '.*';
  });
  return { promql, variables };
}
