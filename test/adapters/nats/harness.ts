/**
 * Test helpers for the NATS adapter: unique namespaces on the shared server (cleaned up by
 * deleting that namespace's streams and buckets only), and a private `nats-server -js` with its
 * own store directory for the tests that restart or kill the broker. Never stop the shared one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { sleep } from '../../support/wait.js';

export const SHARED_URL = 'nats://127.0.0.1:4222';
export const NATS_SERVER = '/usr/sbin/nats-server';

/** A namespace no other test run uses. */
export function uniqueNamespace(what: string): string {
  return `ht-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Deletes every stream of the namespace (KV buckets are streams named `KV_<ns>-...`). */
export async function dropNamespace(url: string, namespace: string): Promise<void> {
  const nc = await connect({ servers: url, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${namespace}-`) || name.startsWith(`KV_${namespace}-`))
        await jsm.streams.delete(name).catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A nats-server of our own with JetStream on a free port and a temporary store directory. */
export class OwnNats {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static available(): boolean {
    return existsSync(NATS_SERVER);
  }

  static async start(): Promise<OwnNats> {
    const server = new OwnNats(await freePort(), await mkdtemp(path.join(os.tmpdir(), 'herald-nats-')));
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

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
    const child = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir], {
      stdio: 'ignore',
    });
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`nats-server on ${this.port} exited with ${child.exitCode}`);
      try {
        const nc = await connect({ servers: this.url, timeout: 500, reconnect: false });
        const jsm = await jetstreamManager(nc);
        await jsm.getAccountInfo(); // JetStream is up (recovered its store)
        await nc.close();
        return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`nats-server on ${this.port} did not come up`);
      await sleep(50);
    }
  }

  private async shutdown(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM'); // this process only, by its pid
    await exited;
    this.child = undefined;
  }
}
