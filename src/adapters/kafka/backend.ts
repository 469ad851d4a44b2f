import type { BackendDefinition } from '../../backends/backend.js';

const KNOWN_PARAMS = ['namespace', 'mirrorDlq'];

/**
 * `kafka://host:port[,host:port...][?namespace=n][&mirrorDlq=true]`: the Kafka transport.
 * `namespace` prefixes every topic and group id (`<namespace>.<topic>`). Kafka keeps no DLQ or
 * idempotency store: pair it with another backend's stores (`stores.url` in the config), or the
 * stores are in memory (with a warning). `mirrorDlq=true` also writes dead letters to `<topic>.dlq`.
 */
export const kafkaBackend: BackendDefinition = {
  name: 'kafka',
  schemes: ['kafka:'],
  example: 'kafka://host:port[,host:port]',
  sharedServer: true,
  drivers: ['@confluentinc/kafka-javascript'],
  parse(url) {
    const match = /^kafka:\/\/([^/?#]*)\/?(?:\?([^#]*))?$/i.exec(url);
    if (!match) return { error: 'expected kafka://host:port[,host:port], e.g. kafka://127.0.0.1:9092' };
    const brokers = match[1]!.split(',').filter((b) => b.length > 0);
    if (brokers.length === 0)
      return { error: 'kafka:// needs at least one broker, e.g. kafka://127.0.0.1:9092' };
    const bad = brokers.find((b) => !/^[^\s:@]+:\d{1,5}$/.test(b));
    if (bad !== undefined) return { error: `each Kafka broker is host:port, got ${JSON.stringify(bad)}` };
    const query = new URLSearchParams(match[2] ?? '');
    const unknown = [...query.keys()].filter((k) => !KNOWN_PARAMS.includes(k));
    if (unknown.length > 0)
      return { error: `unknown URL parameter ${unknown.join(', ')}; known: ${KNOWN_PARAMS.join(', ')}` };
    const namespace = query.get('namespace');
    if (namespace !== null && !/^[A-Za-z0-9._-]+$/.test(namespace))
      return {
        error: `the namespace takes letters, digits, ".", "_" and "-", got ${JSON.stringify(namespace)}`,
      };
    const mirror = query.get('mirrorDlq');
    if (mirror !== null && mirror !== 'true' && mirror !== 'false')
      return { error: `mirrorDlq is true or false, got ${JSON.stringify(mirror)}` };
    return {
      backend: 'kafka',
      url,
      params: {
        brokers: brokers.join(','),
        ...(namespace ? { namespace } : {}),
        ...(mirror === 'true' ? { mirrorDlq: 'true' } : {}),
      },
    };
  },
  load: () => import('./open.js').then((m) => m.kafkaAdapter),
};
