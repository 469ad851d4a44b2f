import type BetterSqlite3 from 'better-sqlite3';
import { loadDriver } from '../../backends/driver.js';

/** The better-sqlite3 constructor, loaded on first use (DriverMissingError when not installed). */
export function sqliteDriver(): typeof BetterSqlite3 {
  return loadDriver<typeof BetterSqlite3>('sqlite', 'better-sqlite3');
}
