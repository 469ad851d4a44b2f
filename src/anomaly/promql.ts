/**
 * Prometheus recording and alerting rules generated from the anomaly definition
 * (./definition.ts): the same values, offsets, median/MAD baseline, floors, threshold, `for` and
 * flow-stopped rule as the in-process detector. `test/deploy/generate.ts` writes the
 * result to deploy/prometheus/herald-anomaly.yml; a test checks the committed file is current.
 */
import { stringify } from 'yaml';
import {
  ANOMALY_DEFAULTS,
  flowStoppedMinRate,
  SIGNALS,
  type SignalDefinition,
  type SignalName,
} from './definition.js';

/** Where the alert handbook lives; `runbook_url` annotations point at its sections. */
export const RUNBOOK_BASE = 'docs/runbooks/alerts.md';

/** A GitHub-style heading anchor: lower case, spaces to dashes, punctuation dropped. */
export function runbookUrl(alert: string): string {
  return `${RUNBOOK_BASE}#${alert
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-')}`;
}

/** Prometheus duration for a number of seconds (`300` → `5m`, `604800` → `1w`). */
export function promDuration(seconds: number): string {
  for (const [unit, s] of [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds % s === 0) return `${seconds / s}${unit}`;
  return `${seconds}s`;
}

/** Severity per alert; see docs/runbooks/alerts.md for what each level means. */
export type Severity = 'P0' | 'P1' | 'P2' | 'P3';

export interface PromRule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const TITLE: Record<SignalName, string> = {
  publish_rate: 'PublishRate',
  handling_rate: 'HandlingRate',
  error_ratio: 'ErrorRatio',
  latency: 'Latency',
};

/** Name of a recorded series of a signal (`herald_anomaly:publish_rate:score`). */
export function recorded(signal: SignalName, what: string): string {
  return `herald_anomaly:${signal}:${what}`;
}

/** Labels every series of a signal keeps. */
export function seriesLabels(def: SignalDefinition): string[] {
  return ['job', ...def.labels];
}

/** The signal's value over one window ending `offset` ago (`''` for now). */
export function valueExpr(def: SignalDefinition, window: string, offset: string): string {
  const by = `sum by (${seriesLabels(def).join(', ')})`;
  const off = offset ? ` offset ${offset}` : '';
  const rate = (selector: string): string => `${by} (rate(${selector}[${window}]${off}))`;
  const runs = rate('events_handled_total{status=~"success|error"}');
  switch (def.name) {
    case 'publish_rate':
      return rate('events_published_total');
    case 'handling_rate':
      return runs;
    case 'error_ratio':
      // No runs in the window: no value (the in-process detector skips it too).
      return `${rate('events_handled_total{status="error"}')} / (${runs} > 0)`;
    case 'latency':
      return `ln(clamp_min(${rate('events_handling_duration_seconds_sum')} / (${rate('events_handling_duration_seconds_count')} > 0), 1e-06))`;
  }
}

function baselineRules(
  def: SignalDefinition,
  kind: 'seasonal' | 'short',
  offsets: readonly number[],
  window: string,
): PromRule[] {
  const on = seriesLabels(def).join(', ');
  const points = recorded(def.name, `${kind}_points`);
  const baseline = recorded(def.name, `${kind}_baseline`);
  return [
    {
      record: points,
      expr: offsets
        .map(
          (o) =>
            `label_replace(${valueExpr(def, window, promDuration(o))}, "ago", "${promDuration(o)}", "", "")`,
        )
        .join('\nor\n'),
    },
    {
      // Only with every point present: a partial history is the warm-up, not a baseline.
      record: baseline,
      expr: `quantile by (${on}) (0.5, ${points}) and on (${on}) (count by (${on}) (${points}) == ${offsets.length})`,
    },
    {
      record: recorded(def.name, `${kind}_mad`),
      expr: `quantile by (${on}) (0.5, abs(${points} - on (${on}) group_left () ${baseline}))`,
    },
  ];
}

/** Recording rules of one signal: value, both baselines, the chosen baseline and MAD, scale and score. */
export function signalRecordingRules(def: SignalDefinition): PromRule[] {
  const d = ANOMALY_DEFAULTS;
  const window = promDuration(d.windowSeconds);
  const on = seriesLabels(def).join(', ');
  const r = (what: string): string => recorded(def.name, what);
  const madTerm = `${d.madFactor} * ${r('mad')}`;
  const relTerm = `${def.relativeFloor} * abs(${r('baseline')})`;
  const scale =
    def.relativeFloor > 0
      ? `clamp_min((${madTerm} >= on (${on}) ${relTerm}) or on (${on}) ${relTerm}, ${def.absoluteFloor})`
      : `clamp_min(${madTerm}, ${def.absoluteFloor})`;
  return [
    { record: r('value'), expr: valueExpr(def, window, '') },
    ...baselineRules(def, 'seasonal', d.seasonalOffsetsSeconds, window),
    ...baselineRules(def, 'short', d.shortOffsetsSeconds, window),
    // The seasonal baseline when three weeks of history exist, else the short-term one.
    { record: r('baseline'), expr: `${r('seasonal_baseline')} or on (${on}) ${r('short_baseline')}` },
    { record: r('mad'), expr: `${r('seasonal_mad')} or on (${on}) ${r('short_mad')}` },
    { record: r('scale'), expr: scale },
    { record: r('score'), expr: `(${r('value')} - ${r('baseline')}) / ${r('scale')}` },
  ];
}

const ANOMALY_SEVERITY: Severity = 'P2';
const FLOW_STOPPED_SEVERITY: Severity = 'P1';

/** Alert name of a signal's anomaly alert. */
export function anomalyAlertName(signal: SignalName): string {
  return `Herald${TITLE[signal]}Anomaly`;
}

/** Alert name of a signal's flow-stopped alert. */
export function flowStoppedAlertName(signal: SignalName): string {
  return `Herald${signal === 'publish_rate' ? 'Publish' : 'Handling'}FlowStopped`;
}

function what(def: SignalDefinition): string {
  return def.labels.includes('group')
    ? 'group {{ $labels.group }}, event type {{ $labels.event_type }} ({{ $labels.job }})'
    : 'event type {{ $labels.event_type }} ({{ $labels.job }})';
}

/** The alerts of one signal. */
export function signalAlertRules(def: SignalDefinition): PromRule[] {
  const d = ANOMALY_DEFAULTS;
  const score = recorded(def.name, 'score');
  const on = seriesLabels(def).join(', ');
  const threshold = d.threshold;
  const out: PromRule[] = [
    {
      alert: anomalyAlertName(def.name),
      expr:
        def.direction === 'up'
          ? `${score} > ${threshold}`
          : `${score} > ${threshold} or ${score} < -${threshold}`,
      for: promDuration(d.forSeconds),
      labels: { severity: ANOMALY_SEVERITY },
      annotations: {
        summary: `Unusual ${def.name.replace('_', ' ')} for ${what(def)}: score {{ $value | printf "%.1f" }}`,
        description:
          `The ${def.description} is {{ $value | printf "%.1f" }} robust deviations from its baseline ` +
          `(median of the same ${promDuration(d.windowSeconds)} window 1, 2 and 3 weeks ago, or of 15, 30 and 45 minutes ago ` +
          `without that history) for ${promDuration(d.forSeconds)}. Value and baseline: ` +
          `${recorded(def.name, 'value')} and ${recorded(def.name, 'baseline')}.`,
        runbook_url: runbookUrl(anomalyAlertName(def.name)),
      },
    },
  ];
  if (def.flowStopped) {
    const minRate = flowStoppedMinRate(d.windowSeconds, d.flowStoppedMinEventsPerWindow);
    out.push({
      alert: flowStoppedAlertName(def.name),
      expr: `${recorded(def.name, 'value')} == 0 and on (${on}) ${recorded(def.name, 'baseline')} >= ${Number(minRate.toPrecision(6))}`,
      for: promDuration(d.flowStoppedForSeconds),
      labels: { severity: FLOW_STOPPED_SEVERITY },
      annotations: {
        summary: `No ${def.name === 'publish_rate' ? 'publishes' : 'handler runs'} for ${what(def)} while traffic is expected`,
        description:
          `Nothing was ${def.name === 'publish_rate' ? 'published' : 'handled'} for ${what(def)} in the last ` +
          `${promDuration(d.windowSeconds)}, while its baseline (${recorded(def.name, 'baseline')}) expects at least ` +
          `${Number(minRate.toPrecision(6))}/s (${d.flowStoppedMinEventsPerWindow} per window).`,
        runbook_url: runbookUrl(flowStoppedAlertName(def.name)),
      },
    });
  }
  return out;
}

/**
 * The whole rules file as a YAML document: one group per signal, its alerts after its recording
 * rules. Rules of one group are evaluated in order at the same timestamp, so an alert reads the
 * score of this evaluation; in a separate group it could read the previous one (groups run
 * independently) and fire one interval late.
 */
export function anomalyRulesDocument(): { groups: { name: string; rules: PromRule[] }[] } {
  return {
    groups: SIGNALS.map((def) => ({
      name: `herald.anomaly.${def.name}`,
      rules: [...signalRecordingRules(def), ...signalAlertRules(def)],
    })),
  };
}

/** The text of deploy/prometheus/herald-anomaly.yml. */
export function anomalyRulesYaml(): string {
  const d = ANOMALY_DEFAULTS;
  const header = [
    '# GENERATED by test/deploy/generate.ts from src/anomaly/definition.ts: do not edit.',
    '# Anomaly detection on Herald event flow (docs/anomaly-detection.md), the same maths as herald/anomaly:',
    `#   value    = the signal over the last ${promDuration(d.windowSeconds)}`,
    `#   baseline = median of the same window ${d.seasonalOffsetsSeconds.map(promDuration).join(', ')} ago (all three needed),`,
    `#              else of ${d.shortOffsetsSeconds.map(promDuration).join(', ')} ago (the short-term baseline); none = warm-up, no alert`,
    `#   scale    = max(${d.madFactor} × MAD, relative floor × |baseline|, absolute floor)`,
    `#   score    = (value − baseline) / scale; alert when beyond ±${d.threshold} for ${promDuration(d.forSeconds)}`,
    '# The seasonal baseline reads 3 weeks back: keep --storage.tsdb.retention.time at 22d or more.',
    '',
  ].join('\n');
  return header + stringify(anomalyRulesDocument(), { lineWidth: 0 });
}
