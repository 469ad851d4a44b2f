/**
 * Writes the generated deploy files: deploy/prometheus/herald-anomaly.yml (from
 * src/anomaly/definition.ts) and the Kubernetes PrometheusRule and Grafana dashboard ConfigMap
 * (from deploy/prometheus/*.yml and deploy/grafana/*.json). Run after changing any of them:
 *   npx tsx test/deploy/generate.ts
 * test/anomaly/rules.test.ts and test/deploy/kubernetes.test.ts fail while the files are stale.
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { anomalyRulesYaml } from '../../src/anomaly/promql.js';
import { GENERATED_FILES, prettierFormat } from './manifests.js';

const root = join(import.meta.dirname, '..', '..');
const anomaly = join(root, 'deploy', 'prometheus', 'herald-anomaly.yml');
writeFileSync(anomaly, await prettierFormat(anomaly, anomalyRulesYaml()));
console.log('wrote deploy/prometheus/herald-anomaly.yml');
for (const f of GENERATED_FILES) {
  writeFileSync(f.path, await prettierFormat(f.path, f.text()));
  console.log(`wrote ${relative(root, f.path)}`);
}
