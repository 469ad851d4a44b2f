import pg from 'pg';
import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { HealthCheck } from '../../health/types.js';

export interface PostgresHealthCheckOptions extends CheckSettings {
  /** A pool (or client) you own: the check borrows a connection for `SELECT 1`. Never closed. */
  readonly pool?: { query(sql: string): Promise<unknown> };
  /** `postgres://user@host:port/db`: each check opens and closes its own connection. */
  readonly connectionString?: string;
  /** Or pg client settings (host, port, user, database, ...). */
  readonly config?: pg.ClientConfig;
}

/** PostgreSQL answers `SELECT 1`. */
export function postgresHealthCheck(options: PostgresHealthCheckOptions): HealthCheck {
  const given = (['pool', 'connectionString', 'config'] as const).filter((k) => options?.[k] !== undefined);
  if (given.length !== 1)
    throw new ConfigError(
      'postgres',
      `give exactly one of pool, connectionString, config (got ${given.join(', ') || 'none'})`,
    );
  return {
    name: options.name ?? 'postgres',
    critical: options.critical ?? true,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.degradedAfterMs !== undefined ? { degradedAfterMs: options.degradedAfterMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check(signal) {
      if (options.pool) {
        await options.pool.query('SELECT 1');
        return;
      }
      const client = new pg.Client({
        ...(options.connectionString ? { connectionString: options.connectionString } : options.config),
        connectionTimeoutMillis: options.timeoutMs ?? 2000,
      });
      client.on('error', () => undefined); // surfaces through the rejected connect/query
      const onAbort = (): void => void client.end().catch(() => undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        signal.removeEventListener('abort', onAbort);
        await client.end().catch(() => undefined);
      }
    },
  };
}
