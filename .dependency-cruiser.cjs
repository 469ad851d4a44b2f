/* global module */
/**
 * Herald's layer boundaries (docs/architecture.md, ADR 0008), checked by `npm run lint:deps`.
 * Layers import downward only: contracts ← transport, store, resilience ← core ← everything else.
 * @type {import('dependency-cruiser').IConfiguration}
 */

/** Each driver package and the one folder allowed to import it. */
const drivers = [
  ['better-sqlite3', 'sqlite'],
  ['ioredis', 'redis'],
  ['pg', 'postgres'],
  ['@nats-io/[^/]+', 'nats'],
  ['kafkajs|@confluentinc/kafka-javascript', 'kafka'],
  ['@grpc/grpc-js', 'grpc'],
];

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'contracts-import-nothing-of-herald',
      comment: 'The bottom layer: types and errors only.',
      severity: 'error',
      from: { path: '^src/contracts/' },
      to: { path: '^src/', pathNot: '^src/contracts/' },
    },
    {
      name: 'transport-and-store-import-only-contracts',
      severity: 'error',
      from: { path: '^src/(transport|store)/' },
      to: { path: '^src/', pathNot: '^src/(contracts|transport|store)/' },
    },
    {
      name: 'resilience-imports-only-contracts',
      comment: 'The policies are a library of their own; the consumer composes with them, not the reverse.',
      severity: 'error',
      from: { path: '^src/resilience/' },
      to: { path: '^src/', pathNot: '^src/(contracts|resilience)/' },
    },
    {
      name: 'core-imports-no-outer-layer',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(adapters|backends|config|cli|demo|health|http|observability|testing)/' },
    },
    {
      name: 'core-imports-no-opentelemetry',
      comment: 'Trace context is written by herald/observability only (ADR 0007).',
      severity: 'error',
      from: { path: '^src/(contracts|core|transport|store|resilience|backends|adapters)/' },
      to: { path: '@opentelemetry/' },
    },
    ...drivers.map(([pkg, folder]) => ({
      name: `${folder}-driver-only-in-its-adapter`,
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/adapters/${folder}/` },
      to: { path: `node_modules/(${pkg})/` },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
