import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { runDemo } from '../../src/demo/run.js';
import { waitUntil } from '../support/wait.js';

test('the demo registers the checks a real service would, and /ready depends on them', async () => {
  let stderr = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      stderr += String(chunk);
      done();
    },
  });
  const stop = new AbortController();
  const running = runDemo({ transportUrl: 'memory://', port: 0, rate: 50, stderr: sink, stop: stop.signal });
  try {
    await waitUntil(() => /serving (http:\/\/\S+)/.test(stderr), 'the demo serves HTTP', 20_000);
    const url = /serving (http:\/\/\S+)/.exec(stderr)![1]!;
    let health: { status: string; checks: { name: string; critical: boolean }[] } | undefined;
    await waitUntil(async () => {
      const res = await fetch(`${url}/health`);
      health = (await res.json()) as typeof health;
      return (health?.checks.length ?? 0) > 0;
    }, 'checks on /health');
    const names = health!.checks.map((c) => c.name);
    assert.ok(names.includes('memory'), `the broker check is there: ${names.join(', ')}`);
    assert.ok(names.includes('consumer-lag'), 'consumer lag');
    assert.ok(
      names.some((n) => n.includes('dead-letter')),
      'dead-letter growth',
    );
    assert.ok(health!.checks.find((c) => c.name === 'memory')!.critical, 'the broker check is critical');
    assert.equal((await fetch(`${url}/ready`)).status, 200);
  } finally {
    stop.abort();
    await running;
  }
});
