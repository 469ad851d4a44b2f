/**
 * Writes deploy/prometheus/herald-anomaly.yml and the Kubernetes PrometheusRule and Grafana
 * dashboard ConfigMap generated from the rules and dashboard files. Run after changing
 * src/anomaly/definition.ts, deploy/prometheus/*.yml or deploy/grafana/*.json:
 *   npx tsx test/deploy/generate.ts
 * test/anomaly/rules.test.ts and test/deploy/kubernetes.test.ts fail while the files are stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anomalyRulesYaml } from '../../src/anomaly/promql.js';

const root = join(import.meta.dirname, '..', '..');
writeFileSync(join(root, 'deploy', 'prometheus', 'herald-anomaly.yml'), anomalyRulesYaml());
console.log('wrote deploy/prometheus/herald-anomaly.yml');
