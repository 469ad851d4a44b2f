/**
 * Test helpers for the Redis adapter: unique key prefixes on the shared Redis (cleaned up with
 * SCAN + UNLINK on that prefix only), and a private `redis-server` with AOF for the tests that
 * restart or kill the broker. The shared server on 6379 has no persistence and serves other
 * tests: never restart or flush it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { sleep } from '../../support/wait.js';

export const SHARED_URL = 'redis://127.0.0.1:6379';
export const REDIS_SERVER = '/usr/bin/redis-server';

/** A prefix no other test run uses. */
export function uniquePrefix(what: string): string {
  return `herald-test:${what}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes every key that starts with `prefix:` or `{prefix` (the hash-tagged store keys). */
export async function dropPrefix(url: string, prefix: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let removed = 0;
  try {
    await client.connect();
    for (const pattern of [`${escapeGlob(prefix)}:*`, `{${escapeGlob(prefix)}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) removed += await client.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
  return removed;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of our own, with `appendfsync always`, on a free port and a temporary directory.
 * `restart()` shuts it down cleanly and starts it again on the same port and data.
 */
export class OwnRedis {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static available(): boolean {
    return existsSync(REDIS_SERVER);
  }

  static async start(): Promise<OwnRedis> {
    const server = new OwnRedis(await freePort(), await mkdtemp(path.join(os.tmpdir(), 'herald-redis-')));
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's process id, e.g. to SIGSTOP it and simulate a hung broker. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async restart(): Promise<void> {
    await this.shutdown();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.shutdown();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--daemonize',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`redis-server on ${this.port} exited with ${child.exitCode}`);
      const probe = new Redis(this.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // not up yet (or still loading the AOF)
      } finally {
        probe.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not come up`);
      await sleep(20);
    }
  }

  private async shutdown(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM'); // redis-server shuts down cleanly on SIGTERM (fsyncs the AOF)
    await exited;
    this.child = undefined;
  }
}
