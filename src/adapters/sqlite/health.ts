import { sqliteDriver } from './driver.js';
import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { HealthCheck } from '../../health/types.js';

export interface SqliteHealthCheckOptions extends CheckSettings {
  /** The database file. It must exist: the check never creates it. */
  readonly path: string;
  /**
   * Run `PRAGMA quick_check` (verifies the file's structure; reads the whole file, so it is slow
   * on big databases) instead of a simple `SELECT count(*) FROM sqlite_master`. Default false.
   */
  readonly quickCheck?: boolean;
}

/**
 * The SQLite file is there and readable: opens it read-only (never creating or locking it for
 * writes), runs a query, closes it.
 */
export function sqliteHealthCheck(options: SqliteHealthCheckOptions): HealthCheck {
  if (typeof options?.path !== 'string' || options.path.length === 0)
    throw new ConfigError('path', 'must be the path of the SQLite file');
  const { path, quickCheck = false } = options;
  return {
    name: options.name ?? 'sqlite',
    critical: options.critical ?? true,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.degradedAfterMs !== undefined ? { degradedAfterMs: options.degradedAfterMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check() {
      const Database = sqliteDriver();
      const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 1000 });
      try {
        if (quickCheck) {
          const rows = db.pragma('quick_check') as { quick_check: string }[];
          const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
          if (problems.length > 0)
            throw new Error(`quick_check found problems: ${problems.slice(0, 3).join('; ')}`);
          return { details: { quickCheck: 'ok' } };
        }
        const { n } = db.prepare('SELECT count(*) AS n FROM sqlite_master').get() as { n: number };
        return { details: { objects: n } };
      } finally {
        db.close();
      }
    },
  };
}
