import pg from 'pg';
import { BackendUnreachableError } from '../../backends/registry.js';
import { ident, migrate } from './schema.js';
import type { ResolvedConnectionOptions } from './options.js';

/** A pool on a Herald schema, migrated. */
export interface PostgresConnection {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** The schema, quoted, for SQL text. */
  readonly s: string;
  /** `postgres://...` with the password masked, or `(pool)`. */
  readonly display: string;
  /** Ends the pool when Herald opened it; a pool of yours is left alone. */
  end(timeoutMs?: number): Promise<void>;
}

/** A masked form of a connection string, safe in errors and logs. */
export function displayUrl(connectionString: string | undefined): string {
  if (connectionString === undefined) return '(pool)';
  try {
    const u = new URL(connectionString);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return connectionString.replace(/:[^:@/]*@/, ':***@');
  }
}

/** pg returns bigint as text; Herald's numbers stay below 2^53, so they are read as numbers. */
export function num(value: string | number | null | undefined): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/**
 * Opens a pool, checks PostgreSQL answers within `connectTimeoutMs` (BackendUnreachableError naming
 * the URL otherwise), and creates or upgrades the schema.
 */
export async function connect(options: ResolvedConnectionOptions): Promise<PostgresConnection> {
  const own = options.pool === undefined;
  const display = displayUrl(options.connectionString);
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString!,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
    });
  // An idle connection dropped by the server (restart) must not crash the process; the pool
  // discards it and the next query opens another.
  if (own) pool.on('error', () => undefined);
  let client: pg.PoolClient;
  try {
    client = await withTimeout(pool.connect(), options.connectTimeoutMs, 'connect');
  } catch (err) {
    if (own) void pool.end().catch(() => undefined);
    throw new BackendUnreachableError(options.connectionString ?? 'postgres (pool)', err);
  }
  try {
    await migrate(client, options.schema, options.mustExist);
  } catch (err) {
    client.release();
    if (own) await pool.end().catch(() => undefined);
    throw err;
  }
  client.release();
  return {
    pool,
    schema: options.schema,
    s: ident(options.schema),
    display,
    end: async (timeoutMs = 5000) => {
      if (!own) return;
      await withTimeout(pool.end(), timeoutMs, 'close').catch(() => undefined);
    },
  };
}

/** Rejects after `ms` with a message naming the step. */
export function withTimeout<T>(promise: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
