import { appendFile } from 'node:fs/promises';

/** One mutation made through the console. */
export interface AuditRecord {
  /** Epoch milliseconds. */
  readonly at: number;
  /** Who: the name the operator gave (`x-herald-actor`), else `token`, with the client address. */
  readonly actor: string;
  readonly address?: string;
  readonly action: 'replay' | 'replay-edited' | 'purge' | 'saga-retry' | 'saga-abort';
  /** What was selected: ids (the first 20 and how many) or the filter. */
  readonly selection: unknown;
  /** How many entries the mutation touched. */
  readonly count: number;
  readonly failed?: number;
  /** Entries per consumer group (sagas: per saga type). */
  readonly groups?: Readonly<Record<string, number>>;
}

/**
 * Every replay, purge, saga retry and saga abort: kept in memory (the newest `capacity`) for the console's audit view and,
 * with `file`, appended to a JSON-lines file that outlives the process.
 */
export class AuditLog {
  private readonly records: AuditRecord[] = [];
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: { file?: string; capacity?: number } = {}) {}

  record(record: AuditRecord): Promise<void> {
    this.records.push(record);
    const capacity = this.options.capacity ?? 10_000;
    if (this.records.length > capacity) this.records.splice(0, this.records.length - capacity);
    const file = this.options.file;
    if (file) this.writing = this.writing.then(() => appendFile(file, `${JSON.stringify(record)}\n`));
    return this.writing;
  }

  /** Newest first. */
  list(limit = 200): AuditRecord[] {
    return this.records.slice(-limit).reverse();
  }
}
