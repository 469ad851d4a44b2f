import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backends } from '../../src/backends/index.js';

/** `herald console` through the real binary against a SQLite file holding dead letters. */

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
let dir: string;
let db: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-console-cli-'));
  db = join(dir, 'events.db');
  const opened = await backends.open(`sqlite://${db}`, { mustExist: false });
  const now = Date.now();
  for (let i = 0; i < 3; i++)
    await opened.stores.deadLetters!.add({
      id: `billing:m${i}`,
      reason: 'permanent',
      message: { id: `m${i}`, headers: {}, body: new TextEncoder().encode('{"type":"a.b","payload":{}}') },
      topic: 'a.events',
      group: 'billing',
      handler: 'billing',
      eventType: 'a.b',
      error: { name: 'Error', message: `boom ${i}` },
      attempts: 1,
      firstFailedAt: now,
      lastFailedAt: now,
      deadLetteredAt: now + i,
    });
  await opened.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

test(
  'herald console serves the page, prints a token once, and replays only with it',
  { timeout: 60_000 },
  async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'console', '--transport', `sqlite://${db}`, '--port', '0'],
      {
        env: { ...process.env, HERALD_TRANSPORT: '', HERALD_PORT: '', HERALD_CONSOLE_TOKEN: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const deadline = Date.now() + 45_000;
      while (!/#token=/.test(stdout)) {
        assert.ok(Date.now() < deadline, `no URL printed; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const printed = new URL(stdout.trim().split('\n')[0]!);
      const token = printed.hash.replace('#token=', '');
      assert.equal(stderr.split(token).length - 1, 1, 'the token is printed once on stderr');
      const page = await fetch(new URL('/', printed));
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="assets\/app.js">/);
      const replay = (auth?: string): Promise<Response> =>
        fetch(new URL('/api/dead-letters/replay', printed), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
          body: JSON.stringify({ filter: { group: 'billing' } }),
        });
      const session = (await (await fetch(new URL('/api/session', printed))).json()) as { sagas: boolean };
      assert.equal(session.sagas, true, 'the Sagas view reads the saga store of the same SQLite file');
      const sagas = await fetch(new URL('/api/sagas', printed));
      assert.equal(sagas.status, 200);
      assert.equal((await replay()).status, 401);
      const ok = await replay(`Bearer ${token}`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { replayed: 3, failed: 0, notFound: 0 });
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  },
);
