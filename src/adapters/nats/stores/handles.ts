import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Connection } from '../connection.js';
import type { Names } from '../names.js';
import { isNotFound } from '../state.js';

export interface StoreSettings {
  /** `file` (default) or `memory` for the stores' stream and buckets. */
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  /** Upper bound on how long an idempotency entry is kept, whatever its TTL. Default 7 days. */
  readonly idempotencyMaxAgeMs: number;
  /** Duplicate window of the events stream: re-appends of an event id within it are skipped. Default 24 h. */
  readonly eventsDuplicateWindowMs: number;
  /** Open only what exists (read-only tools). */
  readonly mustExist: boolean;
}

export interface OpenHandles {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  readonly deadLetters: KV;
  readonly idempotency: KV;
}

/** The stores' stream and buckets, created on first use and shared by the three stores. */
export class StoreHandles {
  private ready: Promise<OpenHandles> | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly names: Names,
    private readonly settings: StoreSettings,
  ) {}

  get(): Promise<OpenHandles> {
    this.ready ??= this.open().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async open(): Promise<OpenHandles> {
    const nc = await this.connection.get();
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const js = jetstream(nc, { timeout: 5000 });
    const { storage, replicas } = this.settings;
    const names = this.names;
    try {
      await jsm.streams.info(names.eventsStream);
    } catch (err) {
      if (!isNotFound(err) || this.settings.mustExist) throw err;
      await jsm.streams
        .add({
          name: names.eventsStream,
          subjects: [`${names.namespace}.events.>`],
          storage: storage as never,
          num_replicas: replicas,
          allow_direct: true,
          duplicate_window: this.settings.eventsDuplicateWindowMs * 1_000_000,
        })
        .catch((e: unknown) => {
          if (!/already in use|exists/i.test(String(e))) throw e;
        });
    }
    const kvm = new Kvm(nc);
    const open = (name: string, maxAgeMs = 0): Promise<KV> =>
      this.settings.mustExist
        ? kvm.open(name)
        : kvm.create(name, {
            history: 1,
            replicas,
            storage: storage as never,
            ...(maxAgeMs ? { ttl: maxAgeMs } : {}),
          });
    const [deadLetters, idempotency] = await Promise.all([
      open(names.deadLetterBucket),
      open(names.idempotencyBucket, this.settings.idempotencyMaxAgeMs),
    ]);
    return { js, jsm, names, deadLetters, idempotency };
  }
}
