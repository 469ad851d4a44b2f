import type {
  Delivery,
  DeliveryHandler,
  GroupStats,
  Message,
  MemoryTransport,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  TopicTopology,
  Transport,
} from '../../src/index.js';

/**
 * A client handle on the shared in-process broker, as a second process would have on a real one:
 * closing it returns its unsettled deliveries to their groups and leaves the broker running.
 */
export class MemoryHandle implements Transport {
  readonly name = 'memory';
  readonly capabilities: MemoryTransport['capabilities'];
  private readonly subs = new Set<Subscription>();
  private readonly unsettled = new Set<Delivery>();
  private closed = false;

  constructor(private readonly broker: MemoryTransport) {
    this.capabilities = broker.capabilities;
  }

  publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    return this.broker.publish(topic, messages, options);
  }

  cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    return this.broker.cancelScheduled(topic, ids);
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    const sub = await this.broker.subscribe(topic, options, (d) => onDelivery(this.wrap(d)));
    this.subs.add(sub);
    return sub;
  }

  stats(topic: string, group: string): Promise<GroupStats> {
    return this.broker.stats(topic, group);
  }

  topology(): Promise<readonly TopicTopology[]> {
    return this.broker.topology();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subs].map((s) => s.close()));
    await Promise.all([...this.unsettled].map((d) => d.release()));
  }

  private wrap(d: Delivery): Delivery {
    this.unsettled.add(d);
    const settle = (fn: () => Promise<void>) => async () => {
      if (this.closed && !this.unsettled.has(d)) return;
      this.unsettled.delete(d);
      await fn();
    };
    return {
      message: d.message,
      topic: d.topic,
      group: d.group,
      attempt: d.attempt,
      ack: settle(() => d.ack()),
      nack: (o?: { delayMs?: number }) => settle(() => d.nack(o))(),
      release: settle(() => d.release()),
    };
  }
}
