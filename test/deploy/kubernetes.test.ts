import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are untyped JSON, walked by path */
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { HealthProbes, Lifecycle, probeHandler } from '../../src/health/index.js';
import { createObservability } from '../../src/observability/index.js';
import {
  GENERATED_FILES,
  KUBERNETES,
  prettierFormat,
  OVERLAYS,
  overlayDir,
  render,
  type Manifest,
} from './manifests.js';
import { heraldInventory } from './support.js';

/**
 * deploy/kubernetes: every overlay renders (with the in-test renderer, and the same as
 * `kubectl kustomize` where kubectl is installed), every rendered object passes its Kubernetes or
 * Prometheus Operator OpenAPI schema, and what the manifests name (probe paths, ports, the metric
 * the HPA scales on, the scrape path, the drain budget, the broker URL) is what Herald serves.
 */

type Validatable = { validate(): void };
const MODELS: Record<string, new (data: never) => Validatable> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

function validate(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  assert.ok(Model, `no schema for ${m.apiVersion} ${m.kind}`);
  new Model(m as never).validate();
}

const SCHEME_PORT: Record<(typeof OVERLAYS)[number], { scheme: string; port: number }> = {
  redis: { scheme: 'redis:', port: 6379 },
  nats: { scheme: 'nats:', port: 4222 },
  kafka: { scheme: 'kafka:', port: 9092 },
  postgres: { scheme: 'postgres:', port: 5432 },
};

const find = (docs: Manifest[], kind: string, name: string): Manifest & Record<string, any> => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(d, `${kind}/${name} missing`);
  return d as Manifest & Record<string, any>;
};

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) =>
    request(url, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end(),
  );
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const rendered = new Map(OVERLAYS.map((o) => [o, render(overlayDir(o))]));

  test('the generated PrometheusRule and dashboard ConfigMap are current (npx tsx test/deploy/generate.ts)', async () => {
    for (const f of GENERATED_FILES)
      assert.equal(readFileSync(f.path, 'utf8'), await prettierFormat(f.path, f.text()), f.path);
  });

  test('every overlay renders the same eleven objects, each valid against its OpenAPI schema', () => {
    for (const [overlay, docs] of rendered) {
      assert.deepEqual(
        docs.map((d) => `${d.kind}/${d.metadata.name}`).sort(),
        [
          'ConfigMap/herald-grafana-dashboard',
          'Deployment/herald-console',
          'Deployment/herald-service',
          'HorizontalPodAutoscaler/herald-service',
          'NetworkPolicy/herald-console',
          'NetworkPolicy/herald-service',
          'PodDisruptionBudget/herald-service',
          'PrometheusRule/herald',
          'Service/herald-console',
          'Service/herald-service',
          'ServiceMonitor/herald-service',
        ],
        overlay,
      );
      for (const d of docs)
        assert.doesNotThrow(() => validate(d), `${overlay}: ${d.kind}/${d.metadata.name}`);
    }
  });

  test('the schema check itself rejects a broken object', () => {
    const deployment = structuredClone(find(rendered.get('redis')!, 'Deployment', 'herald-service'));
    deployment['spec'].template.spec.containers[0].ports[0].containerPort = '7070x';
    assert.throws(() => validate(deployment), /containerPort must be integer/);
    const hpa = structuredClone(find(rendered.get('redis')!, 'HorizontalPodAutoscaler', 'herald-service'));
    delete hpa['spec'].scaleTargetRef;
    assert.throws(() => validate(hpa), /scaleTargetRef/);
  });

  test(
    'kubectl kustomize renders the same objects',
    { skip: kubectl ? false : 'kubectl not installed' },
    () => {
      for (const [overlay, docs] of rendered) {
        const r = spawnSync('kubectl', ['kustomize', overlayDir(overlay)], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const theirs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest);
        const key = (d: Manifest): string => `${d.kind}/${d.metadata.name}`;
        // kustomize moves patched env entries first; order only matters between entries that
        // reference each other, and none here do.
        const byName = (_k: string, v: unknown): unknown =>
          Array.isArray(v) &&
          v.every((x) => typeof x?.name === 'string' && ('value' in x || 'valueFrom' in x))
            ? [...v].sort((a, b) => String(a.name).localeCompare(String(b.name)))
            : v;
        const sorted = (l: Manifest[]): Manifest[] =>
          JSON.parse(
            JSON.stringify([...l].sort((a, b) => key(a).localeCompare(key(b)))),
            byName,
          ) as Manifest[];
        assert.deepEqual(sorted(docs), sorted(theirs), overlay);
      }
    },
  );

  test('each backend overlay points both deployments and both network policies at its broker', () => {
    for (const [overlay, docs] of rendered) {
      const { scheme, port } = SCHEME_PORT[overlay];
      for (const [name, container] of [
        ['herald-service', 'service'],
        ['herald-console', 'console'],
      ] as const) {
        const c = find(docs, 'Deployment', name)['spec'].template.spec.containers.find(
          (x: any) => x.name === container,
        );
        const env = c.env.filter((e: any) => e.name === 'HERALD_TRANSPORT');
        assert.equal(env.length, 1, `${overlay} ${name}: one HERALD_TRANSPORT`);
        const url = new URL(env[0].value);
        assert.equal(url.protocol, scheme, `${overlay} ${name}`);
        assert.equal(Number(url.port), port, `${overlay} ${name}: URL port`);
        const egress = find(docs, 'NetworkPolicy', name)['spec'].egress.flatMap((e: any) =>
          e.ports.map((p: any) => p.port),
        );
        assert.ok(egress.includes(port), `${overlay} ${name}: egress to ${port}`);
        assert.ok(egress.includes(53), `${overlay} ${name}: DNS`);
      }
    }
  });

  describe('what the manifests name is what Herald serves', () => {
    let server: Server;
    let base: string;
    let probes: HealthProbes;
    const docs = (): Manifest[] => rendered.get('redis')!;
    const service = (): Record<string, any> =>
      find(docs(), 'Deployment', 'herald-service')['spec'].template.spec;

    before(async () => {
      // The same routes as the demo service (src/demo/run.ts): herald/health's probeHandler and
      // herald/observability's metricsHandler.
      probes = new HealthProbes();
      probes.markReady();
      const obs = createObservability({
        serviceName: 'k8s',
        metrics: { registry: new Registry() },
        logging: false,
      });
      const probe = probeHandler(probes);
      server = createServer((req, res) => {
        if (req.url === '/metrics') return obs.metricsHandler(req, res);
        probe(req, res);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => {
      probes.markStopped();
      server.close();
    });

    test('liveness, readiness and startup probes hit /live, /ready and /ready on the http port', async () => {
      const c = service().containers[0];
      assert.equal(c.livenessProbe.httpGet.path, '/live');
      assert.equal(c.readinessProbe.httpGet.path, '/ready');
      assert.equal(c.startupProbe.httpGet.path, '/ready');
      for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
        assert.equal(p.httpGet.port, 'http');
        assert.equal(await get(base + p.httpGet.path), 200, p.httpGet.path);
      }
      assert.equal(await get(`${base}/not-a-probe`), 404, 'the server does tell unknown paths apart');
      const port = c.ports.find((p: any) => p.name === 'http');
      assert.equal(port.containerPort, 7070);
      assert.equal(c.env.find((e: any) => e.name === 'HERALD_PORT').value, String(port.containerPort));
    });

    test('the ServiceMonitor scrapes /metrics through the Service port that targets the container', async () => {
      const sm = find(docs(), 'ServiceMonitor', 'herald-service')['spec'];
      const svc = find(docs(), 'Service', 'herald-service')['spec'];
      assert.equal(sm.endpoints[0].path, '/metrics');
      assert.equal(await get(base + sm.endpoints[0].path), 200);
      const svcPort = svc.ports.find((p: any) => p.name === sm.endpoints[0].port);
      assert.ok(svcPort, 'ServiceMonitor port names a Service port');
      assert.equal(svcPort.targetPort, 'http');
      assert.deepEqual(
        sm.selector.matchLabels,
        find(docs(), 'Service', 'herald-service').metadata.labels && {
          'app.kubernetes.io/name': 'herald-service',
        },
      );
      assert.deepEqual(
        svc.selector,
        service().containers && find(docs(), 'Deployment', 'herald-service')['spec'].selector.matchLabels,
      );
    });

    test('termination grace covers preStop, the readiness delay and the drain (ADR 0502)', () => {
      const spec = service();
      const preStop = spec.containers[0].lifecycle.preStop.sleep.seconds;
      // herald/health's Lifecycle defaults, read from a real instance.
      const lifecycle = new Lifecycle({ stop: async () => undefined }, { signals: [], exit: false });
      const readinessDelayS = Number(Reflect.get(lifecycle, 'readinessDelayMs')) / 1000;
      const drainTimeoutS = Number(Reflect.get(lifecycle, 'drainTimeoutMs')) / 1000;
      assert.ok(readinessDelayS > 0 && drainTimeoutS > 0, `${readinessDelayS} ${drainTimeoutS}`);
      assert.ok(preStop > 0);
      assert.ok(spec.terminationGracePeriodSeconds > preStop + readinessDelayS + drainTimeoutS);
    });

    test('the HPA scales on CPU and on a consumer-lag metric Herald exports, by a label it has', async () => {
      const { inventory } = await heraldInventory();
      const hpa = find(docs(), 'HorizontalPodAutoscaler', 'herald-service')['spec'];
      assert.equal(hpa.scaleTargetRef.name, 'herald-service');
      assert.ok(hpa.metrics.some((m: any) => m.type === 'Resource' && m.resource.name === 'cpu'));
      const external = hpa.metrics.find((m: any) => m.type === 'External').external.metric;
      const labels = inventory.get(external.name);
      assert.ok(labels, `Herald exports no ${external.name}`);
      for (const l of Object.keys(external.selector.matchLabels))
        assert.ok(labels.has(l), `${external.name} has no label ${l}`);
      const c = service().containers[0];
      assert.ok(c.resources.requests.cpu, 'CPU utilisation needs a CPU request');
    });

    test('the PDB and the HPA keep at least one pod serving', () => {
      const pdb = find(docs(), 'PodDisruptionBudget', 'herald-service')['spec'];
      const hpa = find(docs(), 'HorizontalPodAutoscaler', 'herald-service')['spec'];
      assert.ok(hpa.minReplicas > pdb.maxUnavailable);
      assert.deepEqual(
        pdb.selector.matchLabels,
        find(docs(), 'Deployment', 'herald-service')['spec'].selector.matchLabels,
      );
    });
  });

  test('the base kustomization lists every file of the base', () => {
    const listed = (
      parseAllDocuments(readFileSync(join(KUBERNETES, 'base', 'kustomization.yaml'), 'utf8'))[0]!.toJS() as {
        resources: string[];
      }
    ).resources;
    const files = spawnSync('ls', [join(KUBERNETES, 'base')], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter((f) => f !== 'kustomization.yaml');
    assert.deepEqual([...listed].sort(), files.sort());
  });
});
