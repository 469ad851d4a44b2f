import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HeraldError, toError } from '../../core/errors.js';
import type { NatsConnectionOptions } from './options.js';

/** NATS did not answer within the connect timeout. The message names the servers. */
export class NatsConnectError extends HeraldError {
  readonly servers: string;
  constructor(servers: string, timeoutMs: number, cause: unknown) {
    super(
      'HERALD_NATS_CONNECT',
      `cannot reach NATS at ${servers} within ${timeoutMs} ms (${toError(cause).message}); check that nats-server is running with -js and the URL is right`,
      { cause },
    );
    this.servers = servers;
  }
}

/** Connection state for health checks and dashboards. */
export interface NatsStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
  /** Times the connection was re-established after a loss. */
  readonly reconnects: number;
  readonly lastError?: string;
}

export const DEFAULT_SERVERS = 'nats://127.0.0.1:4222';

/**
 * One NATS connection, opened on first use. After it is up, a lost connection is re-established
 * with backoff forever (the client's reconnect), and the state is visible in `status()`.
 */
export class Connection {
  private promise: Promise<NatsConnection> | undefined;
  private state: NatsStatus['state'] = 'connecting';
  private reconnects = 0;
  private lastError: string | undefined;
  private readonly owned: boolean;
  readonly servers: string;

  constructor(
    private readonly options: NatsConnectionOptions,
    private readonly name: string,
  ) {
    this.owned = options.connection === undefined;
    const s = options.servers ?? DEFAULT_SERVERS;
    this.servers = typeof s === 'string' ? s : s.join(',');
  }

  get(): Promise<NatsConnection> {
    this.promise ??= this.open();
    return this.promise;
  }

  report(err: unknown, context: string): void {
    const error = toError(err);
    this.lastError = `${context}: ${error.message}`;
    if (this.options.onError) this.options.onError(error, context);
    else process.emitWarning(`${this.name}: ${context}: ${error.message}`, { code: 'HERALD_NATS' });
  }

  status(): NatsStatus {
    return {
      state: this.state,
      reconnects: this.reconnects,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    const p = this.promise;
    this.state = 'closed';
    if (!p || !this.owned) return;
    const nc = await p.catch(() => undefined);
    if (!nc || nc.isClosed()) return;
    // Bounded: flush what is buffered (acks), then close even if the server does not answer.
    await Promise.race([nc.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    await nc.close().catch(() => undefined);
  }

  private async open(): Promise<NatsConnection> {
    let nc: NatsConnection;
    if (this.options.connection) nc = this.options.connection;
    else {
      const timeoutMs = this.options.connectTimeoutMs ?? 3000;
      const servers = this.options.servers ?? DEFAULT_SERVERS;
      try {
        nc = await connect({
          servers: typeof servers === 'string' ? servers : [...servers],
          name: this.name,
          timeout: timeoutMs,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          reconnectJitter: 100,
          pingInterval: 10_000,
        });
      } catch (err) {
        this.promise = undefined; // a later call may try again
        throw new NatsConnectError(this.servers, timeoutMs, err);
      }
    }
    this.state = 'connected';
    void this.watch(nc);
    return nc;
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.state = 'reconnecting';
        this.report(new Error(`disconnected from ${s.server}`), 'connection');
      } else if (s.type === 'reconnect') {
        this.state = 'connected';
        this.reconnects++;
      } else if (s.type === 'error') this.report(s.error, 'connection');
    }
    if (this.state !== 'closed') this.state = 'closed';
  }
}
