import { ConfigError } from '../contracts/errors.js';
import type { BlobStore } from '../store/blob-store.js';
import type {
  Delivery,
  DeliveryHandler,
  GroupStats,
  Message,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  Transport,
} from './transport.js';

/** Header naming the blob that holds a claim-checked message's body. */
export const CLAIM_CHECK_HEADER = 'herald-claim-check';
/** Set on a delivery whose blob could not be fetched after several tries; its body is empty. */
export const CLAIM_CHECK_ERROR_HEADER = 'herald-claim-check-error';

export interface ClaimCheckOptions {
  readonly store: BlobStore;
  /** Bodies larger than this go to the store; default 256 KiB. */
  readonly thresholdBytes?: number;
  /**
   * Deliveries whose blob cannot be fetched are retried (the store may be briefly down); from this
   * attempt on the message is handed over with an empty body and an error header, so the consumer
   * dead-letters it with reason `decode`. Default 5.
   */
  readonly fetchAttempts?: number;
  /** Delay before a delivery whose blob could not be fetched comes back. Default 1000 ms. */
  readonly fetchRetryDelayMs?: number;
}

/**
 * The claim-check pattern as a transport decorator: bodies above the threshold are written to a
 * blob store and the broker carries only a reference (`herald-claim-check: <topic>/<id>`);
 * deliveries fetch the body back before anyone sees them. Wrap the transport you give Herald:
 * `createHerald({ transport: claimCheck(sqlite({ path }), { store: new FileBlobStore('blobs') }) })`.
 * Blobs are never deleted by Herald (dead letters and replays may need them): expire them with the
 * store's own retention, longer than the DLQ's.
 */
export function claimCheck(inner: Transport, options: ClaimCheckOptions): Transport {
  return new ClaimCheckTransport(inner, options);
}

class ClaimCheckTransport implements Transport {
  readonly name: string;
  readonly capabilities: Transport['capabilities'];
  readonly stats?: (topic: string, group: string) => Promise<GroupStats>;
  readonly cancelScheduled?: (topic: string, ids: readonly string[]) => Promise<number>;
  private readonly store: BlobStore;
  private readonly threshold: number;
  private readonly fetchAttempts: number;
  private readonly retryDelayMs: number;

  constructor(
    private readonly inner: Transport,
    options: ClaimCheckOptions,
  ) {
    if (typeof options?.store?.put !== 'function' || typeof options.store.get !== 'function')
      throw new ConfigError('store', 'must be a BlobStore (put, get), e.g. new FileBlobStore(dir)');
    this.store = options.store;
    this.threshold = positive('thresholdBytes', options.thresholdBytes ?? 256 * 1024);
    this.fetchAttempts = positive('fetchAttempts', options.fetchAttempts ?? 5);
    this.retryDelayMs = positive('fetchRetryDelayMs', options.fetchRetryDelayMs ?? 1000);
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    if (inner.stats) this.stats = (topic, group) => inner.stats!(topic, group);
    // A cancelled message's blob stays in the store like any other (see the retention note above).
    if (inner.cancelScheduled) this.cancelScheduled = (topic, ids) => inner.cancelScheduled!(topic, ids);
  }

  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    const out = await Promise.all(
      messages.map(async (m) => {
        if (m.body.byteLength <= this.threshold) return m;
        const key = `${topic}/${m.id}`;
        await this.store.put(key, m.body);
        return { ...m, headers: { ...m.headers, [CLAIM_CHECK_HEADER]: key }, body: new Uint8Array(0) };
      }),
    );
    return options === undefined ? this.inner.publish(topic, out) : this.inner.publish(topic, out, options);
  }

  subscribe(topic: string, options: SubscribeOptions, onDelivery: DeliveryHandler): Promise<Subscription> {
    return this.inner.subscribe(topic, options, (delivery) => {
      const key = delivery.message.headers[CLAIM_CHECK_HEADER];
      if (key === undefined) return onDelivery(delivery);
      return this.store.get(key).then(
        (body) => onDelivery(withMessage(delivery, { ...delivery.message, body })),
        (err: unknown) => {
          if (delivery.attempt < this.fetchAttempts) return delivery.nack({ delayMs: this.retryDelayMs });
          const reason = `blob ${key} could not be fetched: ${(err as Error)?.message ?? String(err)}`;
          const headers = { ...delivery.message.headers, [CLAIM_CHECK_ERROR_HEADER]: reason };
          return onDelivery(withMessage(delivery, { ...delivery.message, headers }));
        },
      );
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The same delivery (settling goes to the original) with another message. */
function withMessage(delivery: Delivery, message: Message): Delivery {
  return {
    message,
    topic: delivery.topic,
    group: delivery.group,
    attempt: delivery.attempt,
    ack: () => delivery.ack(),
    nack: (o) => delivery.nack(o),
    release: () => delivery.release(),
  };
}

function positive(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new ConfigError(field, `must be a whole number >= 1, got ${JSON.stringify(value)}`);
  return value;
}
