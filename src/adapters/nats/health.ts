import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { CheckOutcome, HealthCheck } from '../../health/types.js';

export interface NatsHealthCheckOptions extends CheckSettings {
  /** A connection you own: the check measures its round trip (`rtt()`); never closed. */
  readonly connection?: NatsConnection;
  /** Or servers to connect to for each check, e.g. `nats://127.0.0.1:4222`. */
  readonly servers?: string | string[];
  /**
   * Streams to report (e.g. `herald-topics`, `herald-events`): storage type and replicas of
   * each, and a degraded status where an acknowledged message may not be on disk yet.
   */
  readonly streams?: readonly string[];
}

/**
 * NATS answers a flush; the round-trip time is in the details. With `streams`, each stream's
 * storage and replicas are reported; a stream is flagged (status degraded) when an acknowledged
 * message can be lost: memory storage (gone when the server stops) or a single replica (the
 * server acknowledges after writing to the OS, which syncs to disk every two minutes by default,
 * so a machine crash can take the last writes).
 */
export function natsHealthCheck(options: NatsHealthCheckOptions): HealthCheck {
  if ((options?.connection === undefined) === (options?.servers === undefined)) {
    throw new ConfigError('nats', 'give exactly one of connection or servers');
  }
  return {
    name: options.name ?? 'nats',
    critical: options.critical ?? true,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.degradedAfterMs !== undefined ? { degradedAfterMs: options.degradedAfterMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check(signal) {
      if (options.connection) {
        if (options.connection.isClosed()) throw new Error('connection is closed');
        return inspect(options.connection, options.streams);
      }
      const nc = await connect({
        servers: options.servers,
        timeout: options.timeoutMs ?? 2000,
        reconnect: false,
        maxReconnectAttempts: 0,
      });
      const onAbort = (): void => void nc.close().catch(() => undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await nc.flush();
        return await inspect(nc, options.streams);
      } finally {
        signal.removeEventListener('abort', onAbort);
        await nc.close().catch(() => undefined);
      }
    },
  };
}

async function inspect(nc: NatsConnection, streams: readonly string[] | undefined): Promise<CheckOutcome> {
  const rttMs = await nc.rtt();
  if (!streams || streams.length === 0) return { details: { rttMs } };
  const jsm = await jetstreamManager(nc, { timeout: 2000 });
  const details: Record<string, unknown> = { rttMs };
  const warnings: string[] = [];
  for (const name of streams) {
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(name);
    } catch {
      details[name] = 'not created yet';
      continue;
    }
    const storage = String(info.config.storage);
    const replicas = info.config.num_replicas;
    details[name] = { storage, replicas, messages: info.state.messages };
    warnings.push(...durabilityWarnings(name, storage, replicas));
  }
  if (warnings.length === 0) return { details };
  return { status: 'degraded', message: warnings.join('; '), details };
}

/** Why an acknowledged message of the stream might not survive, if it might not. */
export function durabilityWarnings(stream: string, storage: string, replicas: number): string[] {
  if (storage === 'memory')
    return [`${stream}: memory storage, acknowledged messages are lost when the server stops`];
  if (replicas < 2)
    return [
      `${stream}: 1 replica, acknowledged messages are written but not synced to disk at once (sync_interval); use 3 replicas or sync_interval always`,
    ];
  return [];
}
