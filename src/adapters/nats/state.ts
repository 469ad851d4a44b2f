import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Connection } from './connection.js';
import type { Names } from './names.js';
import type { ResolvedStreamOptions } from './options.js';

/** JetStream handles of one connection, and the streams and buckets of the transport, created once. */
export class Broker {
  private ready: Promise<Handles> | undefined;
  private scheduledReady: Promise<Handles> | undefined;

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
    await this.ensureStream(jsm, this.names.topicsStream, this.names.topicsSubjects);
    const kvm = new Kvm(nc);
    const bucket = (name: string): Promise<KV> =>
      kvm.create(name, { history: 1, replicas: s.replicas, storage: storage as never });
    const [keyOrder, retries] = await Promise.all([
      bucket(this.names.keyOrderBucket),
      bucket(this.names.retriesBucket),
    ]);
    return { nc, js, jsm, keyOrder, retries };
  }

  /**
   * The stream of scheduled messages (`<ns>-scheduled`), created on first use: a namespace that
   * never schedules has no such stream. One message per subject (a subject per topic and id).
   */
  scheduled(): Promise<Handles> {
    this.scheduledReady ??= this.handles()
      .then(async (h) => {
        await this.ensureStream(h.jsm, this.names.scheduledStream, this.names.scheduledSubjects, {
          max_msgs_per_subject: 1,
        });
        return h;
      })
      .catch((err: unknown) => {
        this.scheduledReady = undefined;
        throw err;
      });
    return this.scheduledReady;
  }

  /** Creates a stream with the transport's stream settings unless it exists (left as it is). */
  private async ensureStream(
    jsm: JetStreamManager,
    name: string,
    subjects: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const s = this.stream;
    try {
      await jsm.streams.info(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams
        .add({
          name,
          subjects: [subjects],
          storage: (s.storage === 'memory' ? 'memory' : 'file') as never,
          num_replicas: s.replicas,
          max_age: s.maxAgeMs * 1_000_000,
          max_msgs: s.maxMessages === 0 ? -1 : s.maxMessages,
          duplicate_window: s.duplicateWindowMs * 1_000_000,
          allow_direct: true,
          ...extra,
        })
        .catch((e: unknown) => {
          if (!/already in use|exists/i.test(String(e))) throw e; // another process created it first
        });
    }
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
