import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitUntil } from '../support/wait.js';

/**
 * Runs the real `herald demo` (SQLite broker, free port) and checks its /metrics as Prometheus
 * would see it: promtool accepts the exposition, and the key families carry real traffic.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const installed = promtool.status === 0;
// Locally a missing promtool skips; under CI it must fail (install it with `apt-get install -y prometheus`).
const skip =
  !installed && process.env.CI !== 'true' ? 'promtool not installed (apt-get install -y prometheus)' : false;

/** Sum of every sample of one series name in a text exposition (NaN and ±Inf ignored). */
function total(body: string, name: string): number {
  let sum = 0;
  let samples = 0;
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m?.[1] !== name) continue;
    samples++;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sum += v;
  }
  return samples === 0 ? NaN : sum;
}

describe('herald demo /metrics', { timeout: 40_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-demo-metrics-'));
  let child: ChildProcess | undefined;
  let exited: Promise<[number | null, NodeJS.Signals | null]> | undefined;
  let url = '';
  let stderr = '';
  let stdout = '';
  let body = '';

  before(async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'demo',
        '--port',
        '0',
        // an upper bound in case SIGTERM handling ever breaks; the test stops it long before
        '--duration',
        '60',
        '--transport',
        `sqlite://${join(dir, 'demo.db')}`,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, HERALD_TRANSPORT: '', HERALD_DB: '', HERALD_JSON: '', HERALD_PORT: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitUntil(
      () => {
        if (child?.exitCode !== null) throw new Error(`demo exited early:\n${stderr}`);
        url = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1] ?? '';
        return url !== '';
      },
      'the demo prints its URL',
      15_000,
    );
    // Scrape until the consumers have handled, retried and timed something: an exposition taken
    // before that would leave most families without samples.
    await waitUntil(
      async () => {
        body = await (await fetch(`${url}/metrics`)).text();
        return (
          total(body, 'events_handled_total') > 50 &&
          total(body, 'events_retried_total') > 0 &&
          total(body, 'events_handling_duration_seconds_bucket') > 0
        );
      },
      'the demo handled and retried events',
      15_000,
    );
  });

  after(async () => {
    // Whatever happened above, leave no demo running.
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('promtool check metrics accepts the real /metrics output, without a single lint', { skip }, () => {
    assert.ok(installed, 'promtool is required under CI: apt-get install -y prometheus');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    // promtool reports lint problems (naming, help text, suffixes) on its output; none is harmless here
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '');
  });

  test('published, handled and handling-time families carry real traffic', () => {
    assert.ok(total(body, 'events_published_total') > 0, 'events_published_total');
    assert.ok(total(body, 'events_handled_total') > 0, 'events_handled_total');
    assert.ok(
      total(body, 'events_handling_duration_seconds_bucket') > 0,
      'events_handling_duration_seconds_bucket',
    );
    assert.match(body, /^events_handled_total\{[^}]*group="audit-log"[^}]*status="success"\} [1-9]/m);
    assert.match(
      body,
      /^events_consumer_lag\{topic="conversation\.events",group="analytics-service"\} \d+$/m,
    );
    assert.match(body, /^events_dead_letter_queue_size \d+$/m);
    assert.match(body, /^process_cpu_seconds_total \S+$/m);
  });

  test('http_requests_total counts the requests the demo serves, by route template', async () => {
    assert.equal((await fetch(`${url}/status`)).status, 200);
    assert.equal((await fetch(`${url}/no/such/page?id=42`)).status, 404);
    const after = await (await fetch(`${url}/metrics`)).text();
    assert.match(after, /^http_requests_total\{[^}]*path="\/status"[^}]*status="200"\} [1-9]/m);
    // Unknown paths fold into one series instead of one per URL.
    assert.doesNotMatch(after, /no\/such\/page/);
    assert.ok(total(after, 'http_request_duration_seconds_count') > 0);
  });

  test('SIGTERM stops the demo cleanly: summary printed, nothing lost, exit 0', async () => {
    assert.ok(child && exited);
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal(signal, null, stderr);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /lost {11}0/);
  });
});
