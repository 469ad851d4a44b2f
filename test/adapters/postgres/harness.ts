/**
 * Test helpers for the PostgreSQL adapter: a schema of its own per test on the shared server
 * (dropped after), and a private cluster (initdb on a free port, in a temporary directory) for the
 * tests that restart the server. The shared server on 5432 serves other tests: never restart it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { sleep } from '../../support/wait.js';

export const SHARED_URL = process.env['HERALD_TEST_POSTGRES'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const BIN = '/usr/lib/postgresql/15/bin';

/** A schema name no other test run uses. */
export function uniqueSchema(what: string): string {
  return `t_${what}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
}

/** Drops schemas (and everything in them) on the server at `url`. */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
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

/**
 * A PostgreSQL cluster of our own on a free port. PostgreSQL refuses to run as root, so when the
 * tests run as root the cluster runs as the `postgres` user.
 */
export class OwnPostgres {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly ids: { uid: number; gid: number } | undefined,
  ) {}

  static available(): boolean {
    return existsSync(path.join(BIN, 'initdb'));
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<OwnPostgres> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-pg-'));
    let ids: { uid: number; gid: number } | undefined;
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(dir, uid, gid);
      ids = { uid, gid };
    }
    execFileSync(
      path.join(BIN, 'initdb'),
      ['-D', path.join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync'],
      {
        stdio: 'ignore',
        ...(ids ?? {}),
      },
    );
    const server = new OwnPostgres(await freePort(), dir, ids);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const child = spawn(
      path.join(BIN, 'postgres'),
      [
        '-D',
        path.join(this.dir, 'data'),
        '-p',
        String(this.port),
        '-k',
        this.dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'shared_buffers=32MB',
        '-c',
        'max_connections=200',
      ],
      { stdio: 'ignore', ...(this.ids ?? {}) },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  /** Fast shutdown (clients disconnected, committed data kept), then start again on the same port. */
  async restart(): Promise<void> {
    await this.shutdown();
    await this.launch();
  }

  private async shutdown(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGINT');
    await this.exited;
    this.child = undefined;
  }

  async stop(): Promise<void> {
    await this.shutdown();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
