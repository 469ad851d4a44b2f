import { HeraldError } from '../../core/errors.js';

/** The schema was written by a newer Herald: this version does not know its tables. */
export class PostgresSchemaVersionError extends HeraldError {
  readonly schema: string;
  readonly found: number;
  readonly supported: number;

  constructor(schema: string, found: number, supported: number) {
    super(
      'HERALD_POSTGRES_SCHEMA_VERSION',
      `Herald schema "${schema}" is at version ${found}, newer than this Herald understands (${supported}); upgrade herald`,
    );
    this.schema = schema;
    this.found = found;
    this.supported = supported;
  }
}

/** A publish or store call was made after close(), or PostgreSQL refused it; the cause says why. */
export class PostgresOperationError extends HeraldError {
  constructor(what: string, cause: unknown) {
    super(
      'HERALD_POSTGRES_OPERATION',
      `${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
