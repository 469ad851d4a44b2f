import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { AnomalyDetector, type AnomalyEvent, type AnomalyDetectorOptions } from '../../src/anomaly/index.js';
import {
  anomalyRulesDocument,
  anomalyRulesYaml,
  anomalyAlertName,
  flowStoppedAlertName,
  type PromRule,
} from '../../src/anomaly/promql.js';
import type { SignalName } from '../../src/anomaly/definition.js';
import { mulberry32 } from '../resilience/prng.js';
import { prettierFormat } from '../deploy/manifests.js';
import { DEPLOY, promtoolInstalled, promtoolSkip, runPromtool } from '../deploy/support.js';

/**
 * deploy/prometheus/herald-anomaly.yml is the generator's output, promtool accepts it, and on the
 * same input series Prometheus and the in-process detector compute the same scores and fire the
 * same alerts at the same evaluation times (short-term and seasonal baselines, all four signals,
 * flow stopped, warm-up).
 */

const RULES = join(DEPLOY, 'prometheus', 'herald-anomaly.yml');
const doc = anomalyRulesDocument();
const alertRules = doc.groups
  .flatMap((g) => g.rules)
  .filter((r): r is PromRule & { alert: string } => r.alert !== undefined);
const work = mkdtempSync(join(tmpdir(), 'herald-anomaly-rules-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Cumulative counters of one scenario series, one value per input interval. */
interface Series {
  readonly labels: Record<string, string>;
  readonly published?: number[];
  readonly success?: number[];
  readonly errors?: number[];
  readonly durationSum?: number[];
}

const cumulative = (perStep: number[]): number[] => {
  let c = 0;
  return perStep.map((x) => (c += x));
};

function inputSeries(series: readonly Series[]): { series: string; values: string }[] {
  const out: { series: string; values: string }[] = [];
  const sel = (name: string, labels: Record<string, string>): string =>
    `${name}{${Object.entries({ job: 'svc', instance: 'a:9464', ...labels })
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}}`;
  for (const s of series) {
    const l = s.labels;
    if (s.published)
      out.push({
        series: sel('events_published_total', {
          event_type: l['event_type']!,
          topic: 'orders',
          source: 'svc',
        }),
        values: cumulative(s.published).join(' '),
      });
    if (s.success) {
      const h = { event_type: l['event_type']!, handler: l['group']!, group: l['group']! };
      const errors = s.errors ?? s.success.map(() => 0);
      out.push({
        series: sel('events_handled_total', { ...h, status: 'success' }),
        values: cumulative(s.success).join(' '),
      });
      out.push({
        series: sel('events_handled_total', { ...h, status: 'error' }),
        values: cumulative(errors).join(' '),
      });
      const runs = s.success.map((x, i) => x + errors[i]!);
      out.push({
        series: sel('events_handling_duration_seconds_count', h),
        values: cumulative(runs).join(' '),
      });
      out.push({
        series: sel('events_handling_duration_seconds_sum', h),
        values: cumulative(s.durationSum!).join(' '),
      });
    }
  }
  return out;
}

/** Feeds the same counters to an in-process detector, window values per step like rate() computes them. */
function inProcess(
  series: readonly Series[],
  stepS: number,
  options: AnomalyDetectorOptions,
): { d: AnomalyDetector; at: Map<number, AnomalyEvent[]>; scores: Map<string, number> } {
  const d = new AnomalyDetector({ stepSeconds: stepS, ...options });
  const windowSteps = d.windowSeconds / stepS;
  const at = new Map<number, AnomalyEvent[]>();
  const scores = new Map<string, number>();
  const steps = Math.max(...series.map((s) => (s.published ?? s.success)!.length));
  const sums = new Map<number[], number[]>();
  for (const s of series)
    for (const a of [s.published, s.success, s.errors, s.durationSum]) if (a) sums.set(a, cumulative(a));
  for (let k = windowSteps; k < steps; k++) {
    const t = k * stepS * 1000;
    for (const s of series) {
      const c = (a: number[] | undefined): number =>
        a ? sums.get(a)![k]! - sums.get(a)![k - windowSteps]! : 0;
      const W = d.windowSeconds;
      if (s.published)
        d.observe('publish_rate', { event_type: s.labels['event_type']! }, c(s.published) / W, t);
      if (s.success) {
        const runs = c(s.success) + c(s.errors);
        d.observe('handling_rate', s.labels, runs / W, t);
        d.observe('error_ratio', s.labels, runs > 0 ? c(s.errors) / runs : undefined, t);
        d.observe('latency', s.labels, runs > 0 ? c(s.durationSum) / runs : undefined, t);
      }
    }
    at.set(k, d.firing());
    for (const st of d.status())
      if (st.score) scores.set(`${k}/${st.signal}/${Object.values(st.labels).join('/')}`, st.score.score);
  }
  return { d, at, scores };
}

const ALERT_OF: Record<AnomalyEvent['kind'], (s: SignalName) => string> = {
  anomaly: anomalyAlertName,
  'flow-stopped': flowStoppedAlertName,
};

/** Renders the two template forms the generated annotations use. */
function render(template: string, labels: Record<string, string>, value: number): string {
  return template
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, l: string) => labels[l] ?? '')
    .replace(/\{\{ \$value \| printf "%\.1f" \}\}/g, value.toFixed(1));
}

/** alert_rule_test cases: for every alert and evaluation time, what the in-process detector had firing. */
function expectedAlerts(
  at: Map<number, AnomalyEvent[]>,
  stepS: number,
  evalSteps: readonly number[],
): unknown[] {
  const cases: unknown[] = [];
  for (const k of evalSteps)
    for (const rule of alertRules) {
      const firing = (at.get(k) ?? []).filter((e) => ALERT_OF[e.kind](e.signal) === rule.alert);
      cases.push({
        eval_time: `${(k * stepS) / 60}m`,
        alertname: rule.alert,
        exp_alerts: firing.map((e) => {
          const labels = { job: 'svc', ...e.labels };
          const value = e.kind === 'anomaly' ? e.score!.score : 0;
          return {
            exp_labels: { severity: rule.labels!['severity']!, ...labels },
            exp_annotations: Object.fromEntries(
              Object.entries(rule.annotations!).map(([k2, v]) => [k2, render(v, labels, value)]),
            ),
          };
        }),
      });
    }
  return cases;
}

/** Runs promtool test rules on a test body, against the committed rules or (`rules: false`) none. */
function runRuleTest(name: string, body: object, rules = true): void {
  if (rules) copyFileSync(RULES, join(work, 'herald-anomaly.yml'));
  else writeFileSync(join(work, 'herald-anomaly.yml'), 'groups: []\n');
  const file = join(work, `${name}.test.yml`);
  writeFileSync(file, stringify({ rule_files: ['herald-anomaly.yml'], ...body }, { lineWidth: 0 }));
  const r = runPromtool(['test', 'rules', file]);
  // Inlined expressions are long: show the verdicts, not the queries.
  if (process.env['HERALD_DEBUG_PROMTOOL'])
    writeFileSync(process.env['HERALD_DEBUG_PROMTOOL'], r.stdout + r.stderr);
  const report = `${r.stdout}${r.stderr}`.replace(/expr: ".{200,}?",/g, (m) => `${m.slice(0, 80)}...",`);
  assert.equal(r.status, 0, `promtool test rules ${name}:\n${report}`.slice(0, 8000));
}

/**
 * An expression with every recorded series replaced by the expression that records it, so it can
 * be evaluated at one instant without promtool evaluating every rule at every step before it.
 */
function inline(expr: string): string {
  const recordedExprs = new Map(
    doc.groups.flatMap((g) => g.rules).flatMap((r) => (r.record ? [[r.record, r.expr] as const] : [])),
  );
  return expr.replace(/herald_anomaly:[a-z_]+:[a-z_]+/g, (name) => `(${inline(recordedExprs.get(name)!)})`);
}

describe('generated anomaly rules (deploy/prometheus/herald-anomaly.yml)', () => {
  test('the committed file is the generator output (npx tsx test/deploy/generate.ts)', async () => {
    assert.equal(readFileSync(RULES, 'utf8'), await prettierFormat(RULES, anomalyRulesYaml()));
  });

  test('promtool check rules accepts it', { skip: promtoolSkip }, () => {
    assert.ok(promtoolInstalled, 'promtool is required under CI: apt-get install -y prometheus');
    const r = runPromtool(['check', 'rules', RULES]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stderr.trim(), '');
  });

  test(
    'short-term baseline: Prometheus and the in-process detector agree on scores and alerts',
    { skip: promtoolSkip },
    () => {
      // 100 minutes at 1 m: warm-up, then at minute 70 a spike on order.placed, an error burst and a
      // latency rise in billing, and order.paid stops publishing.
      const random = mulberry32(17);
      const minutes = 100;
      const noisy = (mean: number): number => Math.round(mean * (0.85 + 0.3 * random()));
      const incident = (m: number): boolean => m >= 70 && m < 85;
      const placed: Series = {
        labels: { event_type: 'order.placed' },
        published: Array.from({ length: minutes }, (_, m) => (m === 0 ? 0 : noisy(incident(m) ? 1800 : 600))),
      };
      const paid: Series = {
        labels: { event_type: 'order.paid' },
        published: Array.from({ length: minutes }, (_, m) => (m === 0 || m >= 70 ? 0 : noisy(300))),
      };
      // Errors replace successes during the burst, so the number of runs (handling rate) holds.
      const errors = Array.from({ length: minutes }, (_, m) =>
        m === 0 ? 0 : incident(m) ? noisy(200) : random() < 0.3 ? 1 : 0,
      );
      const success = errors.map((e, m) => (m === 0 ? 0 : noisy(600) - e));
      const billing: Series = {
        labels: { group: 'billing', event_type: 'order.placed' },
        success,
        errors,
        durationSum: success.map(
          (n, m) => (n + errors[m]!) * (incident(m) ? 0.15 : 0.05) * (0.95 + 0.1 * random()),
        ),
      };
      const series = [placed, paid, billing];
      const { at, scores } = inProcess(series, 60, {});
      const evalSteps = [30, 49, 50, 60, 70, 72, 74, 75, 76, 78, 80, 90, 99];
      const fired = new Set([...at.values()].flat().map((e) => `${e.kind}/${e.signal}`));
      // The scenario exercises every alert, so agreement is not agreement on silence.
      assert.deepEqual([...fired].sort(), [
        'anomaly/error_ratio',
        'anomaly/latency',
        'anomaly/publish_rate',
        'flow-stopped/publish_rate',
      ]);
      const promql = [60, 72, 76, 80].flatMap((k) =>
        [
          { signal: 'publish_rate', labels: { event_type: 'order.placed' } },
          { signal: 'error_ratio', labels: { group: 'billing', event_type: 'order.placed' } },
          { signal: 'latency', labels: { group: 'billing', event_type: 'order.placed' } },
        ].map(({ signal, labels }) => {
          const score = scores.get(`${k}/${signal}/${Object.values(labels).join('/')}`);
          assert.ok(score !== undefined, `${signal} scored at ${k}`);
          // promtool compares exactly; the two sides may differ in the last bit of a double.
          const matchers = Object.entries({ job: 'svc', ...labels })
            .map(([x, y]) => `${x}="${y}"`)
            .join(',');
          return {
            expr: `round(herald_anomaly:${signal}:score{${matchers}}, 0.000001)`,
            eval_time: `${k}m`,
            exp_samples: [{ labels: `{${matchers}}`, value: Math.floor(score * 1e6 + 0.5) / 1e6 }],
          };
        }),
      );
      runRuleTest('short', {
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: inputSeries(series),
            promql_expr_test: promql,
            alert_rule_test: expectedAlerts(at, 60, evalSteps),
          },
        ],
      });
    },
  );

  test(
    'seasonal baseline: an hourly shape that the short-term baseline would page on is quiet against the weeks before, a real spike is not',
    { skip: promtoolSkip },
    () => {
      // Three weeks and a day at 5 m steps; the group runs 10/s on even hours and 40/s on odd
      // ones, and triples over the last half hour. Evaluating the rules at each of those 6,336
      // steps takes promtool minutes, so the generated expressions are evaluated inlined, at
      // chosen instants; the `for` and alert plumbing are covered by the test above.
      const stepS = 300;
      const steps = (3 * 7 * 24 + 24) * 12;
      const spikeFrom = steps - 6;
      const level = (k: number): number => (Math.floor(k / 12) % 2 === 0 ? 10 : 40);
      const success = Array.from({ length: steps }, (_, k) =>
        k === 0 ? 0 : level(k) * stepS * (k >= spikeFrom ? 3 : 1),
      );
      const billing: Series = {
        labels: { group: 'billing', event_type: 'order.placed' },
        success,
        durationSum: success.map((n) => n * 0.05),
      };
      const { at, d, scores } = inProcess([billing], stepS, {});
      const week3 = 3 * 7 * 24 * 12;
      const quiet = [...at.entries()].filter(([k]) => k >= week3 && k < spikeFrom).flatMap(([, v]) => v);
      assert.deepEqual(quiet, [], 'no alert against the seasonal baseline');
      assert.ok(
        [...at.entries()].some(([k, v]) => k < week3 && v.length > 0),
        'the short-term baseline alone pages on the hourly shape',
      );
      assert.equal(d.status().find((s) => s.signal === 'handling_rate')!.baseline, 'seasonal');
      assert.ok(
        (at.get(steps - 1) ?? []).some((e) => e.signal === 'handling_rate' && e.baseline === 'seasonal'),
      );

      const matchers = 'job="svc",group="billing",event_type="order.placed"';
      const alert = alertRules.find((r) => r.alert === anomalyAlertName('handling_rate'))!;
      const instants = [week3 + 12, week3 + 13, spikeFrom - 1, spikeFrom + 1, steps - 1];
      const promql = instants.flatMap((k) => {
        const score = scores.get(`${k}/handling_rate/billing/order.placed`)!;
        const firing = Math.abs(score) > 3;
        return [
          {
            expr: `round(${inline('herald_anomaly:handling_rate:score')}, 0.000001)`,
            eval_time: `${(k * stepS) / 60}m`,
            exp_samples: [{ labels: `{${matchers}}`, value: Math.floor(score * 1e6 + 0.5) / 1e6 }],
          },
          {
            expr: inline('herald_anomaly:handling_rate:seasonal_baseline'),
            eval_time: `${(k * stepS) / 60}m`,
            exp_samples: [{ labels: `{${matchers}}`, value: level(k) }],
          },
          {
            expr: `round(${inline(alert.expr)}, 0.000001)`,
            eval_time: `${(k * stepS) / 60}m`,
            exp_samples: firing
              ? [{ labels: `{${matchers}}`, value: Math.floor(score * 1e6 + 0.5) / 1e6 }]
              : [],
          },
        ];
      });
      // The alert expression matches at the spike and not before it.
      assert.deepEqual(
        promql.filter((_, i) => i % 3 === 2).map((p) => p.exp_samples.length),
        [0, 0, 0, 1, 1],
      );
      runRuleTest(
        'seasonal',
        {
          evaluation_interval: '5m',
          tests: [{ interval: '5m', input_series: inputSeries([billing]), promql_expr_test: promql }],
        },
        false,
      );
    },
  );
});
