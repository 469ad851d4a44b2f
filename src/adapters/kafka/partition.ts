import type { Message } from '../../transport/transport.js';

/** One fetched record of one partition, from fetch until it is settled or its partition is revoked. */
export interface Entry {
  readonly partition: PartitionState;
  readonly offset: number;
  readonly message: Message;
  /** Deliveries so far (0 until first handed out). */
  attempt: number;
  settled: boolean;
  /** Handed to the handler and not yet settled. */
  outstanding: boolean;
  /** Waiting for a delayed redelivery. */
  timer: NodeJS.Timeout | undefined;
}

/**
 * What one member knows of one assigned partition: the records fetched and not yet settled, in
 * offset order, and for per-key order the queue of each key. The commit point is the offset of
 * the first unsettled record, so a commit never passes a message that is not settled, nor one
 * behind it.
 */
export class PartitionState {
  /** Unsettled and settled-but-not-yet-passed entries, in offset order from `head`. */
  private entries: Entry[] = [];
  private head = 0;
  /** Per key: the unsettled entries of that key in offset order; only the first is ever out. */
  readonly keys = new Map<string, Entry[]>();
  /** Highest offset fetched, -1 before the first. */
  fetched = -1;
  /** Last offset committed (the next to read), -1 when nothing was committed by this member. */
  committed = -1;
  revoked = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  add(offset: number, message: Message): Entry {
    const entry: Entry = {
      partition: this,
      offset,
      message,
      attempt: 0,
      settled: false,
      outstanding: false,
      timer: undefined,
    };
    this.entries.push(entry);
    this.fetched = offset;
    return entry;
  }

  /** The offset to commit: the first unsettled record, or the one after the last fetched. */
  commitPoint(): number {
    const entries = this.entries;
    while (this.head < entries.length && entries[this.head]!.settled) this.head++;
    if (this.head > 1024 && this.head * 2 > entries.length) {
      this.entries = entries.slice(this.head);
      this.head = 0;
    }
    return this.head < this.entries.length ? this.entries[this.head]!.offset : this.fetched + 1;
  }

  /** Entries not yet settled (for a revoke or a close). */
  unsettled(): Entry[] {
    return this.entries.slice(this.head).filter((e) => !e.settled);
  }

  /** Unsettled entries fetched by this member. */
  get size(): number {
    return this.entries.length - this.head;
  }
}
