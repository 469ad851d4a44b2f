import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Connection } from './connection.js';
import type { Names } from './names.js';
import type { ResolvedStreamOptions } from './options.js';

/** JetStream handles of one connection, and the streams and buckets of the transport, created once. */
export class Broker {
  private ready: Promise<Handles> | undefined;

  constructor(
    readonly connection: Connection,
    readonly names: Names,
    private readonly stream: ResolvedStreamOptions,
  ) {}

  handles(): Promise<Handles> {
    this.ready ??= this.open().catch((err: unknown) => {
      this.ready = undefined; // try again on the next call
      throw err;
    });
    return this.ready;
  }

  private async open(): Promise<Handles> {
    const nc = await this.connection.get();
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const js = jetstream(nc, { timeout: 5000 });
    const s = this.stream;
    const storage = s.storage === 'memory' ? 'memory' : 'file';
    try {
      await jsm.streams.info(this.names.topicsStream);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams
        .add({
          name: this.names.topicsStream,
          subjects: [this.names.topicsSubjects],
          storage: storage as never,
          num_replicas: s.replicas,
          max_age: s.maxAgeMs * 1_000_000,
          max_msgs: s.maxMessages === 0 ? -1 : s.maxMessages,
          duplicate_window: s.duplicateWindowMs * 1_000_000,
          allow_direct: true,
        })
        .catch((e: unknown) => {
          if (!/already in use|exists/i.test(String(e))) throw e; // another process created it first
        });
    }
    const kvm = new Kvm(nc);
    const bucket = (name: string): Promise<KV> =>
      kvm.create(name, { history: 1, replicas: s.replicas, storage: storage as never });
    const [keyOrder, retries] = await Promise.all([
      bucket(this.names.keyOrderBucket),
      bucket(this.names.retriesBucket),
    ]);
    return { nc, js, jsm, keyOrder, retries };
  }
}

export interface Handles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** `<group>.<topic>.<key token>` → the stream sequence of the key's last settled message. */
  readonly keyOrder: KV;
  /** `<group>.<topic>.<seq>` → `{r, due}`: releases (uncounted redeliveries) and the retry's due time. */
  readonly retries: KV;
}

export function isNotFound(err: unknown): boolean {
  return /not found|10059|10014/i.test(String((err as Error)?.message ?? err));
}
