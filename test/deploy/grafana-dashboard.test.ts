import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import {
  checkExpr,
  DASHBOARD,
  grafanaToPromQL,
  heraldInventory,
  promtoolInstalled,
  promtoolSkip,
  runPromtool,
  type Inventory,
} from './support.js';

/**
 * deploy/grafana/herald-overview.json: a well-formed dashboard on a `${datasource}` variable whose
 * every query is valid PromQL (parsed by promtool) over series Herald really exports. It must not
 * need the recording rules: the template variables filter by labels those rules aggregate away.
 */

interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  collapsed?: boolean;
}
interface Variable {
  type: string;
  name: string;
  query: string | { query: string };
  datasource?: { type?: string; uid?: string };
  includeAll?: boolean;
  allValue?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== 'row');
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));
const variables = dashboard.templating.list;
const queryVariables = variables.filter((v) => v.type === 'query');

function variableQuery(v: Variable): { selector: string; label: string } {
  const q = typeof v.query === 'string' ? v.query : v.query.query;
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
  assert.ok(m, `variable ${v.name}: expected label_values(<selector>, <label>), got ${q}`);
  return { selector: m[1]!, label: m[2]! };
}

describe('Grafana dashboard (deploy/grafana/herald-overview.json)', () => {
  test('structure: schema, uid, unique panel ids, a datasource and targets on every panel', () => {
    assert.ok(dashboard.schemaVersion >= 39, `schemaVersion ${dashboard.schemaVersion}`);
    assert.equal(dashboard.uid, 'herald-overview');
    const ids = allPanels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids: ${ids.join(',')}`);
    assert.ok(queryPanels.length >= 20, `only ${queryPanels.length} panels`);
    for (const p of queryPanels) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: datasource`);
      assert.ok(p.targets && p.targets.length > 0, `${p.title}: no targets`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${p.title}: duplicate refIds`);
      for (const t of p.targets) {
        assert.ok(t.expr.trim().length > 0, `${p.title} ${t.refId}: empty expr`);
        assert.deepEqual(t.datasource, p.datasource, `${p.title} ${t.refId}: datasource`);
      }
    }
    for (const p of allPanels) {
      const { x, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${p.title}: gridPos ${JSON.stringify(p.gridPos)}`);
    }
    // a row that is not collapsed keeps its panels at the top level, as Grafana saves it
    for (const r of dashboard.panels.filter((p) => p.type === 'row' && !p.collapsed))
      assert.deepEqual(r.panels ?? [], [], `${r.title}`);
  });

  test('rows: events, retries and dead letters, lag, event store, HTTP, gRPC', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    for (const want of [/^Events$/, /dead letters/i, /lag/i, /event store/i, /^HTTP$/, /^gRPC$/])
      assert.ok(
        rows.some((r) => want.test(r)),
        `no row ${want} in ${rows.join(', ')}`,
      );
  });

  test('template variables: a Prometheus datasource, then job, instance, group, topic, event_type', () => {
    const ds = variables.find((v) => v.name === 'datasource');
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    assert.deepEqual(
      queryVariables.map((v) => v.name),
      ['job', 'instance', 'group', 'topic', 'event_type'],
    );
    for (const v of queryVariables) {
      assert.deepEqual(v.datasource, { type: 'prometheus', uid: '${datasource}' }, v.name);
      // `All` must also match series without the label (a publish-only service has no group)
      assert.equal(v.includeAll, true, v.name);
      assert.equal(v.allValue, '.*', v.name);
      assert.equal(variableQuery(v).label, v.name);
    }
  });

  test('every template variable is used by a panel, and panels use no undefined one', () => {
    const defined = new Set(queryVariables.map((v) => v.name));
    const used = new Set(targets.flatMap(({ target }) => grafanaToPromQL(target.expr).variables));
    for (const v of used) assert.ok(defined.has(v), `undefined variable $${v}`);
    for (const v of defined) assert.ok(used.has(v), `variable $${v} filters nothing`);
  });

  test('promtool parses every query', { skip: promtoolSkip }, () => {
    assert.ok(promtoolInstalled, 'promtool is required under CI: apt-get install -y prometheus');
    // promtool has no offline query parser; a rule file of recording rules gets the real one.
    const rules = [
      ...targets.map(({ panel, target }) => ({
        record: `dashboard:panel_${panel.id}:${target.refId}`,
        expr: grafanaToPromQL(target.expr).promql,
      })),
      ...queryVariables.map((v) => ({
        record: `dashboard:variable:${v.name}`,
        expr: grafanaToPromQL(variableQuery(v).selector).promql,
      })),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'herald-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = runPromtool(['check', 'rules', file]);
      assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('metric names and labels', () => {
    let known: Inventory;
    before(async () => {
      const { inventory, unexercised } = await heraldInventory();
      assert.deepEqual(unexercised, [], 'every Herald metric family was exercised');
      known = inventory;
    });

    test('every panel query uses only series Herald exports, with their labels', () => {
      const problems = targets.flatMap(({ panel, target }) =>
        checkExpr(grafanaToPromQL(target.expr).promql, known).map(
          (p) => `${panel.title} (${target.refId}): ${p}`,
        ),
      );
      assert.deepEqual(problems, []);
    });

    test('every variable reads an exported series and a label it has', () => {
      for (const v of queryVariables) {
        const { selector, label } = variableQuery(v);
        const promql = grafanaToPromQL(selector).promql;
        assert.deepEqual(checkExpr(promql, known), [], v.name);
        assert.deepEqual(
          checkExpr(`count by (${label}) (${promql})`, known),
          [],
          `${v.name}: label ${label}`,
        );
      }
    });

    test('the dashboard shows every Herald event metric family', () => {
      const used = new Set(
        targets.flatMap(({ target }) =>
          checkExpr(grafanaToPromQL(target.expr).promql, new Map())
            .map((p) => /^unknown metric (\S+)$/.exec(p)?.[1])
            .filter((m): m is string => m !== undefined),
        ),
      );
      const families = [...known.keys()].filter(
        (n) => /^(events?_|handlers_)/.test(n) && !/_(sum|count)$/.test(n),
      );
      const missing = families.filter((f) => !used.has(f));
      assert.deepEqual(missing, []);
    });
  });
});
