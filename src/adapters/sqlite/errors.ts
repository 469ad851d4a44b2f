import { HeraldError } from '../../core/errors.js';

/**
 * Base class of the errors the SQLite adapter throws for a database file it cannot use. Every one
 * names the file (`path`) and says what to do about it; the driver's error is kept as `cause`.
 */
export class SqliteDatabaseError extends HeraldError {
  /** The database file the error is about. */
  readonly path: string;

  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}

/** The file exists but is not an SQLite database, or its pages are corrupt. */
export class SqliteNotADatabaseError extends SqliteDatabaseError {
  constructor(path: string, cause?: unknown) {
    super(
      'HERALD_SQLITE_NOT_A_DATABASE',
      path,
      `${path} is not an SQLite database or is corrupt; point \`path\` at a new file, or restore this one from a backup`,
      { cause },
    );
  }
}

/** The file is an SQLite database that belongs to something else (it has tables Herald did not create). */
export class SqliteForeignDatabaseError extends SqliteDatabaseError {
  constructor(path: string, detail: string) {
    super(
      'HERALD_SQLITE_FOREIGN_DATABASE',
      path,
      `${path} is an SQLite database that Herald did not create (${detail}); give Herald a file of its own, ` +
        'e.g. `.herald/events.db` (your tables may be added to a Herald file later, not the other way round)',
    );
  }
}

/** The file was written by a newer Herald with a schema this version does not know. */
export class SqliteSchemaVersionError extends SqliteDatabaseError {
  readonly found: number;
  readonly supported: number;

  constructor(path: string, found: number, supported: number) {
    super(
      'HERALD_SQLITE_SCHEMA_TOO_NEW',
      path,
      `${path} has Herald schema version ${found}, newer than the ${supported} this version understands; ` +
        'upgrade herald in this service (every process sharing the file must run a version that knows the schema)',
    );
    this.found = found;
    this.supported = supported;
  }
}

/** The file or its directory cannot be written (permissions, read-only mount, immutable file). */
export class SqliteReadOnlyError extends SqliteDatabaseError {
  constructor(path: string, cause?: unknown) {
    super(
      'HERALD_SQLITE_READ_ONLY',
      path,
      `${path} cannot be written; the process needs write access to the file and to its directory ` +
        '(SQLite creates -wal and -shm files next to it)',
      { cause },
    );
  }
}

/** The file cannot be opened or created (missing directory, a path through a file, no permission). */
export class SqliteCannotOpenError extends SqliteDatabaseError {
  constructor(path: string, cause?: unknown) {
    super(
      'HERALD_SQLITE_CANNOT_OPEN',
      path,
      `${path} cannot be opened or created; check that its directory exists and is writable by this process`,
      { cause },
    );
  }
}

/** Another connection held a lock on the file for longer than `busyTimeoutMs`. */
export class SqliteBusyError extends SqliteDatabaseError {
  readonly busyTimeoutMs: number;

  constructor(path: string, busyTimeoutMs: number, cause?: unknown) {
    super(
      'HERALD_SQLITE_BUSY',
      path,
      `${path} stayed locked by another connection for more than busyTimeoutMs=${busyTimeoutMs}; ` +
        'find the process holding a long transaction on it (or an open `sqlite3` shell), or raise busyTimeoutMs',
      { cause },
    );
    this.busyTimeoutMs = busyTimeoutMs;
  }
}

/** Any other failure of the database (disk full, I/O error, ...). */
export class SqliteOperationError extends SqliteDatabaseError {
  constructor(path: string, operation: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('HERALD_SQLITE_FAILED', path, `${operation} on ${path} failed: ${detail}`, { cause });
  }
}

/**
 * Turns a driver error into one of the typed errors above. Errors that are already Herald errors
 * (e.g. ConcurrencyError raised inside a transaction) pass through untouched.
 */
export function translateSqliteError(
  err: unknown,
  path: string,
  busyTimeoutMs: number,
  operation: string,
): Error {
  if (err instanceof HeraldError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new SqliteBusyError(path, busyTimeoutMs, err);
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
    return new SqliteNotADatabaseError(path, err);
  if (code.startsWith('SQLITE_READONLY')) return new SqliteReadOnlyError(path, err);
  if (code.startsWith('SQLITE_CANTOPEN')) return new SqliteCannotOpenError(path, err);
  if (code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') return new SqliteReadOnlyError(path, err);
  return new SqliteOperationError(path, operation, err);
}
