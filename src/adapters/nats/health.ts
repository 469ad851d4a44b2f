import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { HealthCheck } from '../../health/types.js';

export interface NatsHealthCheckOptions extends CheckSettings {
  /** A connection you own: the check measures its round trip (`rtt()`); never closed. */
  readonly connection?: NatsConnection;
  /** Or servers to connect to for each check, e.g. `nats://127.0.0.1:4222`. */
  readonly servers?: string | string[];
}

/** NATS answers a flush; the round-trip time is in the details. */
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
        return { details: { rttMs: await options.connection.rtt() } };
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
        return { details: { rttMs: await nc.rtt() } };
      } finally {
        signal.removeEventListener('abort', onAbort);
        await nc.close().catch(() => undefined);
      }
    },
  };
}
