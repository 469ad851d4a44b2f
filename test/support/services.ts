/**
 * Reachability of the real services the adapter tests talk to.
 *
 * Locally an unreachable service skips the dependent tests with a loud reason. Under `CI=true` it fails
 * them instead: CI must never count a skipped adapter test as a pass.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';

export const SERVICES = {
  postgres: { host: '127.0.0.1', port: 5432 },
  redis: { host: '127.0.0.1', port: 6379 },
  nats: { host: '127.0.0.1', port: 4222 },
  rabbitmq: { host: '127.0.0.1', port: 5672 },
  mariadb: { host: '127.0.0.1', port: 3306 },
  mosquitto: { host: '127.0.0.1', port: 1883 },
} as const;

export type ServiceName = keyof typeof SERVICES;

/** Resolves true when a TCP connection to the service can be opened within `timeoutMs`. */
export function isReachable(name: ServiceName, timeoutMs = 1000): Promise<boolean> {
  const { host, port } = SERVICES[name];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Returns the options for `describe`/`test` that depend on a service: `{ skip: reason }` when it is
 * unreachable outside CI, and `{}` otherwise (so under CI the test runs and fails on the connection).
 */
export async function needs(name: ServiceName): Promise<{ skip?: string }> {
  if (await isReachable(name)) return {};
  const { host, port } = SERVICES[name];
  const reason = `${name} is not reachable on ${host}:${port} (run scripts/services.sh to start it)`;
  if (process.env.CI === 'true') return {};
  console.warn(`SKIPPING: ${reason}`);
  return { skip: reason };
}

/** For tests that must fail (not skip) when the service is down, e.g. inside `before` hooks. */
export async function assertReachable(name: ServiceName, t?: TestContext): Promise<void> {
  if (await isReachable(name)) return;
  const { host, port } = SERVICES[name];
  const message = `${name} is not reachable on ${host}:${port}; start it with scripts/services.sh`;
  if (t) t.diagnostic(message);
  throw new Error(message);
}
