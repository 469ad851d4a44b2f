/**
 * The part of a better-sqlite3 `Database` that Herald's public SQLite APIs take or hand out,
 * written structurally so Herald's published typings compile without `@types/better-sqlite3`
 * (a user's `Database` fits it as is).
 */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A better-sqlite3 connection, as Herald's outbox and saga effects use it. */
export interface SqliteConnection {
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  readonly name: string;
}
