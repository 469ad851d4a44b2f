import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  checkExpr,
  EXAMPLE_CONFIG,
  heraldInventory,
  loadRules,
  promtoolInstalled,
  promtoolSkip,
  recordedLabels,
  RULE_TESTS,
  RULES,
  runPromtool,
  SYNTHETIC_SERIES,
  analyzePromQL,
  type Inventory,
} from './support.js';

/**
 * deploy/prometheus/herald-alerts.yml: promtool accepts it and its unit tests pass, every alert is
 * complete and tested both ways, and every expression uses only series Herald exports (or the
 * rules record) with labels those series have.
 */

interface RuleTestFile {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
  }[];
}

const rules = loadRules();
const alerts = rules.filter((r) => r.alert !== undefined);

describe('Prometheus rules (deploy/prometheus)', () => {
  test('promtool check rules accepts the file', { skip: promtoolSkip }, () => {
    assert.ok(promtoolInstalled, 'promtool is required under CI: apt-get install -y prometheus');
    const r = runPromtool(['check', 'rules', RULES]);
    assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
    // check rules prints lint findings (duplicate rules, ...) on stderr even when it succeeds
    assert.equal(r.stderr.trim(), '', r.stderr);
  });

  test(
    'promtool check config accepts the example configuration that loads the rules',
    { skip: promtoolSkip },
    () => {
      assert.ok(promtoolInstalled, 'promtool is required under CI: apt-get install -y prometheus');
      const r = runPromtool(['check', 'config', EXAMPLE_CONFIG]);
      assert.equal(r.status, 0, `promtool check config:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /SUCCESS: 2 rule files found/);
    },
  );

  test('promtool test rules passes the unit tests', { skip: promtoolSkip }, () => {
    assert.ok(promtoolInstalled, 'promtool is required under CI: apt-get install -y prometheus');
    const r = runPromtool(['test', 'rules', RULE_TESTS]);
    assert.equal(r.status, 0, `promtool test rules:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /SUCCESS/);
  });

  test('every alert has for, a severity, summary, description and runbook', () => {
    assert.ok(alerts.length >= 14, `only ${alerts.length} alerts`);
    assert.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
    for (const a of alerts) {
      assert.match(a.for ?? '', /^\d+[smh]$/, `${a.alert}: for`);
      assert.ok(['P0', 'P1', 'P2', 'P3'].includes(a.labels?.['severity'] ?? ''), `${a.alert}: severity`);
      for (const key of ['summary', 'description', 'runbook', 'runbook_url'])
        assert.ok((a.annotations?.[key] ?? '').trim().length > 0, `${a.alert}: annotation ${key}`);
      assert.match(
        a.annotations!['summary']!,
        /\{\{ \$labels\.\w+ \}\}/,
        `${a.alert}: summary names what broke`,
      );
    }
  });

  test('the unit tests fire every alert at least once and also check it silent', () => {
    const file = parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTestFile;
    assert.deepEqual(file.rule_files, ['herald-alerts.yml']);
    const cases = file.tests.flatMap((t) => t.alert_rule_test ?? []);
    const names = new Set(alerts.map((a) => a.alert));
    // promtool passes a test of an alert that does not exist when it expects no alerts
    for (const c of cases) assert.ok(names.has(c.alertname), `test of unknown alert ${c.alertname}`);
    for (const name of names) {
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(
        mine.some((c) => c.exp_alerts.length > 0),
        `${name} has no test case where it fires`,
      );
      assert.ok(
        mine.some((c) => c.exp_alerts.length === 0),
        `${name} has no test case where it stays silent`,
      );
    }
  });

  describe('metric names and labels', () => {
    let known: Inventory;
    before(async () => {
      const { inventory, unexercised } = await heraldInventory();
      assert.deepEqual(unexercised, [], 'every Herald metric family was exercised');
      known = new Map([...inventory, ...SYNTHETIC_SERIES, ...recordedLabels(rules)]);
    });

    test('every expression uses series Herald exports or the rules record, with their labels', () => {
      const problems = rules.flatMap((r) =>
        checkExpr(r.expr, known).map((p) => `${r.record ?? r.alert}: ${p}`),
      );
      assert.deepEqual(problems, []);
    });

    test('a recording rule name states the labels it keeps', () => {
      for (const [name, labels] of recordedLabels(rules)) {
        const rule = rules.find((r) => r.record === name)!;
        const { selectors, grouping } = analyzePromQL(rule.expr);
        const kept = new Set(grouping);
        for (const s of selectors)
          for (const l of known.get(s.metric) ?? []) if (s.metric.includes(':')) kept.add(l);
        for (const l of labels) assert.ok(kept.has(l), `${name}: keeps no label ${l}`);
      }
    });

    test('the checker itself catches a renamed metric and a wrong label', () => {
      assert.deepEqual(checkExpr('sum by (job) (rate(events_handled_total[5m]))', known), []);
      assert.deepEqual(checkExpr('rate(events_handeld_total[5m])', known), [
        'unknown metric events_handeld_total',
      ]);
      assert.deepEqual(checkExpr('events_consumer_lag{queue="x"}', known), [
        'events_consumer_lag has no label queue',
      ]);
      assert.deepEqual(checkExpr('sum by (tenant) (events_consumer_lag)', known), [
        'grouping by tenant, which none of its metrics has',
      ]);
    });
  });
});
