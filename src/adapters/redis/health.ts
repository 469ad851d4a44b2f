import type { Cluster, Redis } from 'ioredis';
import { redisDriver } from './driver.js';
import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { HealthCheck } from '../../health/types.js';

export interface RedisHealthCheckOptions extends CheckSettings {
  /** An ioredis client you own (it is never closed); or give `url`. */
  readonly client?: Redis | Cluster;
  /** `redis://host:port[/db]`: each check opens its own short connection. Default redis://127.0.0.1:6379. */
  readonly url?: string;
}

/**
 * Redis answers PING. With `url`, each run opens a connection that does not retry or queue, so a
 * stopped Redis fails the check at once instead of hanging until the timeout.
 */
export function redisHealthCheck(options: RedisHealthCheckOptions = {}): HealthCheck {
  if (options.client && options.url) throw new ConfigError('url', 'give either client or url, not both');
  return {
    name: options.name ?? 'redis',
    critical: options.critical ?? true,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.degradedAfterMs !== undefined ? { degradedAfterMs: options.degradedAfterMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check(signal) {
      if (options.client) {
        const reply = await options.client.ping();
        if (reply !== 'PONG') throw new Error(`PING answered ${JSON.stringify(reply)}`);
        return;
      }
      const client = new (redisDriver().Redis)(options.url ?? 'redis://127.0.0.1:6379', {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: options.timeoutMs ?? 2000,
      });
      // The socket's error (ECONNREFUSED, ENOTFOUND...) says more than the rejected connect's
      // "Connection is closed", so it is the one reported.
      let socketError: Error | undefined;
      client.on('error', (err: Error) => (socketError ??= err));
      const onAbort = (): void => client.disconnect();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await client.connect().catch((err: unknown) => {
          throw socketError ?? err;
        });
        const reply = await client.ping();
        if (reply !== 'PONG') throw new Error(`PING answered ${JSON.stringify(reply)}`);
      } finally {
        signal.removeEventListener('abort', onAbort);
        client.disconnect();
      }
    },
  };
}
