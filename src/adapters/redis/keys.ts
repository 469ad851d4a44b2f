/**
 * Key layout. Every key of one topic carries the hash tag `{<topic>}`, so a topic's stream and all
 * its groups' bookkeeping live in one Redis Cluster slot and the Lua scripts can touch them
 * atomically.
 */
export class TopicKeys {
  /** The topic's stream. */
  readonly stream: string;
  /** Start of every group key of this topic; the trim script appends `<group>:pk`. */
  readonly groupPrefix: string;

  constructor(prefix: string, topic: string) {
    const base = `${prefix}:{${topic}}`;
    this.stream = `${base}:s`;
    this.groupPrefix = `${base}:g:`;
  }

  group(name: string): GroupKeys {
    return new GroupKeys(this.stream, `${this.groupPrefix}${name}:`);
  }
}

/** Bookkeeping of one consumer group on one topic, next to the stream's own consumer-group state. */
export class GroupKeys {
  /** Retry queue: stream ids scored by the time they are due again. */
  readonly delayed: string;
  /** Stream ids deliverable again now (nacked without delay, released, or unblocked by their key). */
  readonly ready: string;
  /** Ordering key → stream id of the message that holds the key. */
  readonly locks: string;
  /** Messages passed over because their key was held: `<len(key)><key><padded id>`, lexically ordered. */
  readonly held: string;
  /** Padded ids of every parked (ready, delayed or held) message, so trimming can spare them. */
  readonly parked: string;
  /** Attempts so far of parked messages that were delivered before. */
  readonly attempts: string;
  /** A one-entry stream bumped when `ready` gains work, so blocked members wake up. */
  readonly wake: string;

  constructor(
    readonly stream: string,
    base: string,
  ) {
    this.delayed = `${base}dl`;
    this.ready = `${base}rd`;
    this.locks = `${base}lk`;
    this.held = `${base}hd`;
    this.parked = `${base}pk`;
    this.attempts = `${base}at`;
    this.wake = `${base}wk`;
  }

  /** The KEYS of the fetch and settle scripts, in their order. */
  all(): string[] {
    return [
      this.stream,
      this.delayed,
      this.ready,
      this.locks,
      this.held,
      this.parked,
      this.attempts,
      this.wake,
    ];
  }
}
