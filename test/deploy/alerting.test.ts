import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { DEPLOY, type Rule } from './support.js';

/**
 * The alerting handbook and Alertmanager example: every alert of deploy/prometheus has a P0–P3
 * severity and a runbook_url pointing at a section of docs/runbooks/alerts.md that explains it in
 * four parts; the example routing sends each severity where the handbook says; the inhibition
 * rules name real alerts; and amtool accepts the file.
 */

const ROOT = join(DEPLOY, '..');
const HANDBOOK = join(ROOT, 'docs', 'runbooks', 'alerts.md');
const AM_CONFIG = join(DEPLOY, 'alertmanager', 'alertmanager.example.yml');
const RULE_FILES = ['herald-alerts.yml', 'herald-anomaly.yml'];

const alerts: Rule[] = RULE_FILES.flatMap((f) =>
  (parse(readFileSync(join(DEPLOY, 'prometheus', f), 'utf8')) as { groups: { rules: Rule[] }[] }).groups
    .flatMap((g) => g.rules)
    .filter((r) => r.alert !== undefined),
);
const names = new Set(alerts.map((a) => a.alert!));

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

/** Level-2 sections of the handbook by anchor. */
function sections(): Map<string, { title: string; body: string }> {
  const text = readFileSync(HANDBOOK, 'utf8');
  const out = new Map<string, { title: string; body: string }>();
  const parts = text.split(/^## /m).slice(1);
  for (const part of parts) {
    const [title, ...rest] = part.split('\n');
    out.set(slug(title!), { title: title!.trim(), body: rest.join('\n') });
  }
  return out;
}

const amtool = spawnSync('amtool', ['--version'], { encoding: 'utf8' });
const amtoolSkip =
  amtool.status !== 0 && process.env['CI'] !== 'true'
    ? 'amtool not installed (apt-get install -y prometheus-alertmanager)'
    : false;

describe('alerting handbook and routing', () => {
  test('the alerts the operations plan asks for exist', () => {
    for (const name of [
      'HeraldDeadLetterQueueGrowing',
      'HeraldConsumerStalled',
      'HeraldConsumerLagGrowing',
      'HeraldCircuitBreakerOpen',
      'HeraldDegradationLevelChanged',
      'HeraldPublishRateAnomaly',
      'HeraldHandlingRateAnomaly',
      'HeraldErrorRatioAnomaly',
      'HeraldLatencyAnomaly',
      'HeraldPublishFlowStopped',
      'HeraldHandlingFlowStopped',
    ])
      assert.ok(names.has(name), name);
  });

  test('every alert links a handbook section with meaning, confirm, act and replay/drain, at its severity', () => {
    const byAnchor = sections();
    for (const a of alerts) {
      const severity = a.labels?.['severity'] ?? '';
      assert.match(severity, /^P[0-3]$/, `${a.alert}: severity`);
      const url = a.annotations?.['runbook_url'] ?? '';
      const m = /^docs\/runbooks\/alerts\.md#([a-z0-9-]+)$/.exec(url);
      assert.ok(m, `${a.alert}: runbook_url ${url}`);
      const section = byAnchor.get(m[1]!);
      assert.ok(section, `${a.alert}: no section #${m[1]} in docs/runbooks/alerts.md`);
      assert.equal(section.title, a.alert, `${a.alert}: the section is about another alert`);
      for (const part of [
        '**Meaning** (' + severity + ')',
        '**Confirm.**',
        '**Act.**',
        '**Replay or drain.**',
      ])
        assert.ok(section.body.includes(part), `${a.alert}: section lacks ${part}`);
    }
  });

  test('no handbook section for an alert that does not exist, and in-page links resolve', () => {
    const byAnchor = sections();
    const extra = [...byAnchor.values()]
      .map((s) => s.title)
      .filter((t) => t.startsWith('Herald') && !names.has(t));
    assert.deepEqual(extra, []);
    const text = readFileSync(HANDBOOK, 'utf8');
    for (const [, anchor] of text.matchAll(/\]\(#([a-z0-9-]+)\)/g))
      assert.ok(byAnchor.has(anchor!), `broken link #${anchor}`);
  });

  test('the inhibition rules name real alerts and labels those alerts have', () => {
    const config = parse(readFileSync(AM_CONFIG, 'utf8')) as {
      inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
    };
    for (const rule of config.inhibit_rules)
      for (const matcher of [...rule.source_matchers, ...rule.target_matchers]) {
        const m = /^alertname(=~|=|!=)"(.*)"$/.exec(matcher);
        assert.ok(m, matcher);
        for (const n of m[2]!.split('|')) assert.ok(names.has(n), `inhibit rule names unknown alert ${n}`);
      }
  });

  test('amtool check-config accepts the example', { skip: amtoolSkip }, () => {
    const r = spawnSync('amtool', ['check-config', AM_CONFIG], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    assert.match(r.stdout, /8 inhibit rules/);
  });

  test('each severity reaches the receivers the handbook names', { skip: amtoolSkip }, () => {
    const expected: Record<string, string> = { P0: 'pager,chat', P1: 'pager,chat', P2: 'chat', P3: 'email' };
    for (const [severity, receivers] of Object.entries(expected)) {
      const r = spawnSync(
        'amtool',
        [
          'config',
          'routes',
          'test',
          `--config.file=${AM_CONFIG}`,
          `severity=${severity}`,
          'alertname=HeraldTest',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), receivers, severity);
    }
    for (const a of alerts) assert.ok(a.labels!['severity']! in expected);
  });
});
