import type { DeadLetterStore } from '../store/dead-letter-store.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';

/**
 * The transport seam: the one interface every broker adapter implements. It moves opaque messages
 * and knows nothing of events, codecs or handlers; everything else is built on top of it.
 */

import type { Message } from '../contracts/message.js';

export type { Message };

/** Durable stores that live with a transport: the same file, the same server. */
export interface TransportStores {
  readonly deadLetters?: DeadLetterStore;
  readonly idempotency?: IdempotencyStore;
  /** Closes what these stores opened. */
  close(): Promise<void>;
}

/** A topic on the broker and the consumer groups that read it. */
export interface TopicTopology {
  readonly topic: string;
  readonly groups: readonly string[];
}

/**
 * One delivery of a message to one member of a consumer group. Settle it exactly once.
 *
 * A settle that rejects may not have been applied, and the lease is no longer kept alive: once it
 * expires the message is redelivered (an attempt counted), as if this member had died. Before then
 * a second settle may still land (SQLite and PostgreSQL take it). No transport keeps a failed
 * delivery leased forever (ADR 0042).
 */
export interface Delivery {
  readonly message: Message;
  readonly topic: string;
  readonly group: string;
  /** 1 on first delivery; +1 on each redelivery after `nack` or an expired lease. */
  readonly attempt: number;
  /** Done: the group never sees this message again. */
  ack(): Promise<void>;
  /**
   * Failed: deliver again after `delayMs` (0 = as soon as possible). This is the retry queue.
   * With per-key ordering the key stays blocked until the message is finally acked.
   */
  nack(options?: { delayMs?: number }): Promise<void>;
  /**
   * Not processed (e.g. the consumer is shutting down): make it available again at once without
   * counting a failed attempt. Never poisons the message.
   */
  release(): Promise<void>;
}

export type Ordering = 'key' | 'none';

export interface SubscribeOptions {
  /** Consumer group. Every group gets every message; members of one group share them. */
  readonly group: string;
  /** Maximum deliveries outstanding (unsettled) at this member at once. */
  readonly prefetch: number;
  /**
   * `key` (default): a message is not delivered while an earlier message with the same key is
   * unsettled or waiting for redelivery anywhere in the group. `none`: no such hold-back.
   */
  readonly ordering?: Ordering;
  /** Where a group that has never consumed this topic starts. Default `earliest`. */
  readonly startFrom?: 'earliest' | 'latest';
}

/** Called once per delivery. The transport does not wait for it to settle before delivering more. */
export type DeliveryHandler = (delivery: Delivery) => void | Promise<void>;

export interface Subscription {
  /**
   * Stop receiving: no new delivery reaches this member once it resolves. Deliveries already
   * handed out stay valid and can still be settled while the transport is open, so a consumer can
   * drain its in-flight work after closing its subscriptions.
   */
  close(): Promise<void>;
}

export interface TransportCapabilities {
  /** Messages survive a process (and broker) restart. */
  readonly persistent: boolean;
  /** Several processes can be members of one group. */
  readonly distributed: boolean;
  readonly consumerGroups: boolean;
  readonly orderedByKey: boolean;
  /** `nack({ delayMs })` delays the redelivery by at least `delayMs`. */
  readonly delayedRedelivery: boolean;
  /**
   * `publish(..., { deliverAt })` holds the messages until `deliverAt`, durably (as durable as the
   * transport is), and `cancelScheduled` removes them before then. Herald refuses a scheduled
   * publish on a transport without it rather than deliver early.
   */
  readonly scheduledPublish: boolean;
}

/** Options of one `publish` call. */
export interface PublishOptions {
  /**
   * Deliver no earlier than this time (epoch milliseconds). The messages are stored now and become
   * visible to every group at `deliverAt`; until then `cancelScheduled` can remove them. A time in
   * the past delivers at once. A scheduled message enters its topic, and its key's order, when it
   * comes due: it holds back nothing before then. Message ids of pending scheduled messages are
   * meant to be unique per topic (memory, SQLite, PostgreSQL and Redis replace an earlier pending
   * one with the same id: scheduling it again reschedules it). See ADR 0041.
   */
  readonly deliverAt?: number;
}

/** Queue depths of one group on one topic, where the transport can tell. */
export interface GroupStats {
  /** Messages published but not yet delivered to the group. */
  readonly lag: number;
  /**
   * Published with a future `deliverAt` on this topic and not yet due (not counted in `lag`).
   * Absent where the transport cannot tell.
   */
  readonly scheduled?: number;
  /** Delivered and not yet settled. */
  readonly inFlight: number;
  /** Nacked and waiting for their redelivery time: the retry queue. */
  readonly delayed: number;
}

export interface Transport {
  /** Short name for logs and metrics, e.g. `memory`, `sqlite`, `redis`. */
  readonly name: string;
  readonly capabilities: TransportCapabilities;
  /** Resolves once the messages are durable (as durable as the transport is). All-or-error per call. */
  publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void>;
  /**
   * Removes scheduled messages of `topic` that are not yet due, by message id. Resolves with how
   * many were removed; an id that is unknown, already delivered or already cancelled counts 0.
   * Atomic against the message coming due: either it is removed and never delivered, or it was
   * already in the topic and this counts 0. Present when `capabilities.scheduledPublish` is true.
   */
  cancelScheduled?(topic: string, ids: readonly string[]): Promise<number>;
  subscribe(topic: string, options: SubscribeOptions, onDelivery: DeliveryHandler): Promise<Subscription>;
  /** Queue depths per group; optional. */
  stats?(topic: string, group: string): Promise<GroupStats>;
  /**
   * Checks that the broker answers, within `timeoutMs`; rejects with an error naming the broker
   * (its URL, password masked) otherwise. `herald.start()` calls it first, so an unreachable broker
   * fails start instead of hanging it. Optional: transports without a connection leave it out.
   */
  connect?(options: { readonly timeoutMs: number }): Promise<void>;
  /**
   * The durable stores that belong with this transport (a dead-letter store in the same SQLite
   * file, on the same Redis...). Herald uses them for the stores it is not given, and closes them
   * with itself, so a durable transport never pairs with an in-memory dead-letter queue by
   * accident. Optional: in-memory transports leave it out.
   */
  defaultStores?(): TransportStores;
  /** Every topic the broker holds and the groups that read it; for tools such as `herald stats`. */
  topology?(): Promise<readonly TopicTopology[]>;
  /**
   * Closes subscriptions and connections. Unsettled deliveries go back to their groups (released
   * or left to lease expiry, never failed); settling them afterwards is a no-op. Idempotent.
   */
  close(): Promise<void>;
}
