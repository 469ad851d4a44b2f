/**
 * What a broker adapter tells Herald about itself, once: the URL schemes it serves, the driver
 * packages it needs, and how to open a transport and its stores from a URL. Config, the CLI, the
 * demo and the console all open backends through the registry built from these descriptors, so
 * adding a broker is one folder under `src/adapters/` plus one registration line.
 */
import type { DeadLetterStore } from '../store/dead-letter-store.js';
import type { EventStore } from '../store/event-store.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { Transport } from '../transport/transport.js';
import type { HealthCheck } from '../health/types.js';
import type { SagaStore } from '../saga/store.js';

/** How to open a backend. Every field is optional; adapters ignore what does not apply to them. */
export interface BackendOpenOptions {
  /**
   * Options handed to the adapter's transport factory as they are (a config file's
   * `transport.options`). The adapter validates them and rejects unknown fields.
   */
  readonly transportOptions?: Readonly<Record<string, unknown>>;
  /** How long to wait for the broker to answer before failing. Default 3000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Open only what already exists and create nothing (no file, no directory, no schema, no
   * stream): read-only tools such as `herald dlq list` and `herald stats` set this, so a typo in a
   * path fails instead of creating an empty database.
   */
  readonly mustExist?: boolean;
  /**
   * A namespace that isolates this opening from others on the same broker (Redis key prefix,
   * stream-name prefix, schema name). Overrides one given in the URL.
   */
  readonly namespace?: string;
  /** Skip opening the stores (a process that only publishes). Default false. */
  readonly transportOnly?: boolean;
}

/** The stores that live on a backend. A backend without one of them leaves it undefined. */
export interface BackendStores {
  readonly deadLetters?: DeadLetterStore;
  readonly idempotency?: IdempotencyStore;
  readonly events?: EventStore;
}

/** A transport and the stores that belong with it, opened from one URL. */
export interface OpenedBackend {
  /** The backend's name, e.g. `redis`. */
  readonly backend: string;
  /** The URL as given, with any password masked: safe to print. */
  readonly displayUrl: string;
  /** The namespace in effect, where the backend has one. */
  readonly namespace?: string;
  readonly transport: Transport;
  readonly stores: BackendStores;
  /** Closes the transport and every store once; later calls return the same promise. */
  close(): Promise<void>;
}

/** A URL that a backend accepted, split into what its adapter needs. */
export interface ParsedBackendUrl {
  /** The backend's name. */
  readonly backend: string;
  /** The URL as given. */
  readonly url: string;
  /**
   * Adapter-specific fields (a file path, a host list...). `namespace`, when present, is the
   * isolation prefix named in the URL (Redis `?prefix=`, a stream-name prefix, a schema).
   */
  readonly params: Readonly<Record<string, string>>;
}

/** The part of an adapter that imports its driver; loaded only when a URL of its scheme is opened. */
export interface BackendAdapter {
  /** Opens the transport (and, unless `transportOnly`, the stores) and checks the broker answers. */
  open(parsed: ParsedBackendUrl, options: BackendOpenOptions): Promise<OpenedBackend>;
  /**
   * The saga store on this backend, opened on its own (most services run no sagas, so opening a
   * backend does not open it). Close it with its `close()`.
   */
  openSagaStore?(parsed: ParsedBackendUrl, options: BackendOpenOptions): Promise<SagaStore>;
  /** A health check of the broker behind the URL, for /health and /ready. */
  healthCheck?(parsed: ParsedBackendUrl, options: { timeoutMs?: number; critical?: boolean }): HealthCheck;
}

/** The self-description an adapter registers. Importing it must not load the driver. */
export interface BackendDefinition {
  /** Short name, used in logs, errors and metrics: `sqlite`, `redis`, `nats`... */
  readonly name: string;
  /** URL schemes with the colon, lower case: `['redis:', 'rediss:']`. */
  readonly schemes: readonly string[];
  /** An example URL, shown in errors and help. */
  readonly example: string;
  /**
   * True for a broker server that several applications share (Redis, NATS, Kafka, PostgreSQL): the
   * demo then gives each run its own namespace (`params.namespace`) unless the URL names one.
   * Such a backend accepts `?namespace=<name>` in its URL.
   */
  readonly sharedServer: boolean;
  /** npm packages the adapter needs at run time (optional peers), named when one is missing. */
  readonly drivers: readonly string[];
  /** Checks a URL of one of `schemes` without loading the driver; returns what is wrong with it. */
  parse(url: string): ParsedBackendUrl | { readonly error: string };
  /** Loads the adapter (and so the driver). */
  load(): Promise<BackendAdapter>;
}
