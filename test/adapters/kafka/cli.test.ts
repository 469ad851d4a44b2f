/**
 * The CLI the way users run it: `herald dev kafka` hosts a mock cluster and prints its URL, and
 * `herald demo --transport <that URL>` runs the demo system on it and loses nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { kafkaAvailable, REAL_BROKERS } from './harness.js';

const MAIN = join(import.meta.dirname, '..', '..', '..', 'src', 'cli', 'main.ts');

function herald(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('herald dev kafka + herald demo', kafkaAvailable(), () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  });

  test('the demo on the mock cluster started by `herald dev kafka` loses nothing', async () => {
    let url: string;
    if (REAL_BROKERS) url = `kafka://${REAL_BROKERS}`;
    else {
      const dev = herald(['dev', 'kafka', '--json', '--duration', '120']);
      children.push(dev);
      const first = await new Promise<string>((resolve, reject) => {
        createInterface({ input: dev.stdout! }).once('line', resolve);
        dev.once('exit', (code) => reject(new Error(`herald dev kafka exited with ${code}`)));
      });
      const printed = JSON.parse(first) as { bootstrap: string; url: string; pid: number };
      assert.match(printed.bootstrap, /^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
      url = printed.url;
    }
    const demo = herald([
      'demo',
      '--transport',
      url,
      '--duration',
      '5',
      '--settle',
      '60',
      '--json',
      '--port',
      '0',
    ]);
    children.push(demo);
    let stdout = '';
    let stderr = '';
    demo.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    demo.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout) as {
      transport: string;
      published: number;
      lost: number;
      settled: boolean;
    };
    assert.equal(summary.transport, url);
    assert.ok(summary.published > 0);
    assert.equal(summary.lost, 0);
    assert.equal(summary.settled, true);
    assert.match(stderr, /HERALD_KAFKA_MEMORY_STORES/, 'the in-memory stores are announced');
    const dev = children[0]!;
    if (!REAL_BROKERS) {
      const exited = new Promise((resolve) => dev.once('exit', resolve));
      dev.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});
