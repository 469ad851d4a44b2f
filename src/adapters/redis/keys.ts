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
  /** Scheduled publish: message ids scored by the (Redis clock) time they enter the stream. */
  readonly scheduled: string;
  /** Scheduled publish: message id → `<20-digit order>` + the entry's fields, length-prefixed. */
  readonly scheduledBodies: string;
  /** Scheduled publish: the counter that orders messages scheduled for the same millisecond. */
  readonly scheduledOrder: string;
  /** A one-entry stream bumped by each scheduled publish, so blocked members learn the new due time. */
  readonly topicWake: string;

  constructor(prefix: string, topic: string) {
    const base = `${prefix}:{${topic}}`;
    this.stream = `${base}:s`;
    this.groupPrefix = `${base}:g:`;
    this.scheduled = `${base}:sc`;
    this.scheduledBodies = `${base}:sb`;
    this.scheduledOrder = `${base}:so`;
    this.topicWake = `${base}:tw`;
  }

  group(name: string): GroupKeys {
    return new GroupKeys(this.stream, `${this.groupPrefix}${name}:`, this);
  }

  /** The KEYS of the schedule script, in its order. */
  scheduleKeys(): string[] {
    return [this.scheduled, this.scheduledBodies, this.scheduledOrder, this.topicWake];
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
  /**
   * Followers: entries that came after their key's holder and wait, still leased, in the PEL of the
   * consumer that holds the key (same member format as `held`). See ADR 0305.
   */
  readonly followers: string;

  constructor(
    readonly stream: string,
    base: string,
    private readonly topic: TopicKeys,
  ) {
    this.delayed = `${base}dl`;
    this.ready = `${base}rd`;
    this.locks = `${base}lk`;
    this.held = `${base}hd`;
    this.parked = `${base}pk`;
    this.attempts = `${base}at`;
    this.wake = `${base}wk`;
    this.followers = `${base}fw`;
  }

  /** The KEYS of the fetch script: the settle script's, then the topic's scheduled messages. */
  fetchKeys(): readonly string[] {
    // Built once: the consumer passes them on every fetch.
    return (this.fetchKeyList ??= [
      ...this.all(),
      this.topic.scheduled,
      this.topic.scheduledBodies,
      this.topic.topicWake,
    ]);
  }

  private fetchKeyList: readonly string[] | undefined;

  /** The topic's wake stream (bumped by scheduled publishes), which blocked members also read. */
  get topicWake(): string {
    return this.topic.topicWake;
  }

  /** The KEYS of the settle script, in their order. */
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
      this.followers,
    ];
  }
}
