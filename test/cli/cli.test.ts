import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { herald, type CliResult as Result } from '../support/cli.js';

/**
 * Runs the real CLI as a child process (`node --import tsx src/cli/main.ts ...`) against temporary
 * SQLite files, and checks what a script would: exit codes, stdout JSON, stderr messages.
 */

function json<T = Record<string, unknown>>(r: Result): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

interface DeadLetterJson {
  id: string;
  reason: string;
  group: string;
  topic: string;
  eventType?: string;
  message: { body: { type: string; payload: unknown }; bodyEncoding: string };
}

interface DemoJson {
  published: number;
  handled: number;
  retries: number;
  deadLettered: number;
  deadLetteredByReason: Record<string, number>;
  lost: number;
  orderViolations: number;
  settled: boolean;
  groups: {
    group: string;
    routed: number;
    handled: number;
    skipped: number;
    deadLettered: number;
    pending: number;
    lost: number;
  }[];
  handlers: Record<string, { handled: number }>;
}

const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('herald CLI', { concurrency: 2 }, () => {
  describe('herald usage and exit codes', { concurrency: 1 }, () => {
    test('no command, an unknown command and an unknown flag exit 2 with usage on stderr', async () => {
      const [none, unknown, badFlag] = await Promise.all([
        herald([]),
        herald(['frobnicate']),
        herald(['stats', '--nope', '--transport', 'memory://']),
      ]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /Usage: herald <command>/);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command "frobnicate"/);
      assert.equal(badFlag.code, 2);
      assert.match(badFlag.stderr, /Unknown option '--nope'[\s\S]*Usage:\n {2}herald stats/);
      assert.equal(badFlag.stdout, '');
    });

    test('bad option values exit 2; --help exits 0 and prints to stdout', async () => {
      const [rate, settle, url, help] = await Promise.all([
        herald(['demo', '--rate', 'fast', '--transport', 'memory://']),
        herald(['demo', '--settle=-1', '--transport', 'memory://']),
        herald(['stats', '--transport', 'kafka://x']),
        herald(['dlq', '--help']),
      ]);
      assert.equal(rate.code, 2);
      assert.match(rate.stderr, /--rate must be a number/);
      assert.equal(settle.code, 2);
      assert.match(settle.stderr, /--settle must be a number >= 0, got "-1"/);
      assert.equal(url.code, 2);
      assert.match(url.stderr, /transport: .*kafka/i);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /herald dlq replay --all/);
      assert.match(help.stdout, /HERALD_TRANSPORT/);
    });

    test('publish then tail --from-start shows the event; flags win over env', async () => {
      const db = join(dir, 'pubsub.db');
      const published = await herald(
        [
          'publish',
          'order.placed',
          '--data',
          '{"orderId":"o-1","total":42}',
          '--aggregate',
          'o-1',
          '--tenant',
          't1',
          '--json',
        ],
        { HERALD_DB: db },
      );
      assert.equal(published.code, 0, published.stderr);
      const envelope = json<{ id: string; type: string }>(published);
      assert.equal(envelope.type, 'order.placed');

      // HERALD_TRANSPORT points elsewhere; --transport must win.
      const tail = await herald(
        ['tail', '--events', 'order.*', '--from-start', '--count', '1', '--transport', `sqlite://${db}`],
        {
          HERALD_TRANSPORT: 'memory://',
        },
      );
      assert.equal(tail.code, 0, tail.stderr);
      const lines = tail.stdout.trim().split('\n');
      assert.equal(lines.length, 1);
      const event = JSON.parse(lines[0]!) as {
        id: string;
        type: string;
        payload: unknown;
        aggregateId: string;
        tenantId: string;
      };
      assert.equal(event.id, envelope.id);
      assert.deepEqual(event.payload, { orderId: 'o-1', total: 42 });
      assert.equal(event.aggregateId, 'o-1');
      assert.equal(event.tenantId, 't1');

      const badData = await herald([
        'publish',
        'order.placed',
        '--data',
        '{nope',
        '--transport',
        `sqlite://${db}`,
      ]);
      assert.equal(badData.code, 2);
      assert.match(badData.stderr, /--data is not valid JSON/);
    });
  });

  describe('herald demo on SQLite, then the DLQ and stats commands on its file', { concurrency: 1 }, () => {
    const db = join(dir, 'demo.db');
    const env = { HERALD_DB: db };
    let demo: DemoJson;
    let deadLetters: DeadLetterJson[];

    before(async () => {
      const r = await herald(['demo', '--duration', '6', '--json', '--port', '0'], env);
      assert.equal(r.code, 0, `demo failed:\n${r.stderr}\n${r.stdout}`);
      demo = json<DemoJson>(r);
    });

    test('the demo accounts for every event in every group, with retries, dead letters and order kept', () => {
      assert.ok(demo.settled, 'messages settled before the summary');
      assert.equal(demo.lost, 0);
      assert.equal(demo.orderViolations, 0);
      assert.ok(demo.published > 0);
      assert.ok(demo.handled > 0);
      assert.ok(demo.retries > 0, 'notification-service failures were retried');
      assert.ok(demo.deadLettered > 0, 'malformed payloads were dead-lettered');
      assert.ok((demo.deadLetteredByReason['schema'] ?? 0) > 0);
      assert.deepEqual(
        demo.groups.map((g) => g.group),
        ['analytics-service', 'notification-service', 'audit-log'],
      );
      for (const g of demo.groups) {
        assert.equal(g.lost, 0, `${g.group} lost events`);
        assert.equal(
          g.routed,
          g.handled + g.skipped + g.deadLettered + g.pending,
          `${g.group} accounts for every routed event`,
        );
      }
      // analytics and audit read both topics: they see every published event.
      assert.equal(demo.groups[0]!.routed, demo.published);
      assert.ok(demo.handlers['audit-log']!.handled > 0);
    });

    test('dlq list --json shows the schema failures; dlq show returns one entry', async () => {
      const [r, filteredResult, missing] = await Promise.all([
        herald(['dlq', 'list', '--json', '--limit', '1000'], env),
        herald(['dlq', 'list', '--json', '--reason', 'schema', '--group', 'audit-log'], env),
        herald(['dlq', 'show', 'no-such-id'], env),
      ]);
      assert.equal(r.code, 0, r.stderr);
      deadLetters = json<{ items: DeadLetterJson[] }>(r).items;
      assert.equal(deadLetters.length, demo.deadLettered);
      const schema = deadLetters.filter((e) => e.reason === 'schema');
      assert.equal(schema.length, demo.deadLetteredByReason['schema']);
      for (const e of schema) {
        assert.equal(e.eventType, 'document.uploaded');
        assert.equal(e.message.bodyEncoding, 'json');
        assert.equal(e.message.body.type, 'document.uploaded');
      }
      const filtered = json<{ items: DeadLetterJson[] }>(filteredResult);
      assert.ok(filtered.items.length > 0);
      assert.ok(filtered.items.every((e) => e.reason === 'schema' && e.group === 'audit-log'));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no entry with id "no-such-id"/);

      const shown = await herald(['dlq', 'show', schema[0]!.id, '--json'], env);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(json<DeadLetterJson>(shown).id, schema[0]!.id);
    });

    test('dlq purge needs --yes; with it, it deletes what the filter selects', async () => {
      const refused = await herald(['dlq', 'purge', '--group', 'audit-log'], env);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /add --yes/);
      const expected = deadLetters.filter((e) => e.group === 'audit-log').length;
      const purged = await herald(['dlq', 'purge', '--group', 'audit-log', '--yes', '--json'], env);
      assert.equal(purged.code, 0, purged.stderr);
      assert.deepEqual(json(purged), { purged: expected });
      const left = json<{ items: DeadLetterJson[] }>(
        await herald(['dlq', 'list', '--json', '--limit', '1000'], env),
      ).items;
      assert.equal(left.length, deadLetters.length - expected);
      deadLetters = left;
    });

    test('dlq replay --all empties the DLQ; stats shows the replayed messages waiting for their groups', async () => {
      const replayed = await herald(['dlq', 'replay', '--all', '--json', '--progress'], env);
      assert.equal(replayed.code, 0, replayed.stderr);
      assert.deepEqual(json(replayed), { replayed: deadLetters.length, failed: [] });
      assert.match(
        replayed.stderr,
        new RegExp(`replaying ${deadLetters.length}/${deadLetters.length} \\(100%\\)`),
      );
      const [emptied, stats] = await Promise.all([
        herald(['dlq', 'list', '--json'], env),
        herald(['stats', '--json'], env),
      ]);
      assert.deepEqual(json(emptied), { items: [] });
      assert.equal(stats.code, 0, stats.stderr);
      const rows = json<{
        transport: string;
        groups: { topic: string; group: string; lag: number; scheduled: number; deadLetters: number }[];
      }>(stats);
      assert.equal(rows.transport, 'sqlite');
      const analytics = rows.groups.find(
        (g) => g.topic === 'document.events' && g.group === 'analytics-service',
      );
      // The replayed copies are on the topic, not yet consumed (the demo is not running).
      const replayedToAnalytics = deadLetters.filter(
        (e) => e.group === 'analytics-service' && e.topic === 'document.events',
      ).length;
      assert.equal(analytics?.lag, replayedToAnalytics);
      assert.ok(rows.groups.every((g) => g.deadLetters === 0));
      assert.ok(
        rows.groups.every((g) => g.scheduled === 0),
        'SQLite reports scheduled messages',
      );
    });

    test('a second demo run consumes the replayed messages (malformed: back in the DLQ) and serves HTTP', async () => {
      let status: Record<string, unknown> | undefined;
      let live: number | undefined;
      let ready: number | undefined;
      let metrics = '';
      let unknownPath: number | undefined;
      let probing: Promise<void> | undefined;
      const r = await herald(
        ['demo', '--duration', '3', '--json', '--port', '0', '--rate', '50'],
        env,
        (stderr) => {
          const url = /serving (http:\/\/\S+)/.exec(stderr)?.[1];
          if (!url || probing) return;
          probing = (async () => {
            status = (await (await fetch(`${url}/status`)).json()) as Record<string, unknown>;
            live = (await fetch(`${url}/live`)).status;
            ready = (await fetch(`${url}/ready`)).status;
            metrics = await (await fetch(`${url}/metrics`)).text();
            unknownPath = (await fetch(`${url}/nope`)).status;
          })();
        },
      );
      await probing;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(typeof status?.['published'], 'number');
      assert.equal(live, 200);
      assert.ok(ready === 200 || ready === 503, `ready answers (503 only before start), got ${ready}`);
      assert.match(metrics, /^# TYPE events_published_total counter$/m);
      assert.equal(unknownPath, 404);

      const back = json<{ items: DeadLetterJson[] }>(
        await herald(['dlq', 'list', '--json', '--limit', '1000'], env),
      ).items;
      const replayedSchema = deadLetters.filter((e) => e.reason === 'schema').map((e) => e.id);
      const backIds = new Set(back.map((e) => e.id));
      for (const id of replayedSchema)
        assert.ok(backIds.has(id), `replayed malformed ${id} is dead-lettered again`);
      // A replay goes only to the group that dead-lettered it: audit-log skipped analytics' replayed copies.
      for (const id of replayedSchema) {
        const messageId = id.slice(id.indexOf(':') + 1);
        assert.ok(!backIds.has(`audit-log:${messageId}`), `audit-log must not process the replay of ${id}`);
      }
    });
  });
});
