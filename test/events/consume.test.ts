import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import {
  claimCheck,
  CLAIM_CHECK_HEADER,
  createHerald,
  defineEvent,
  FileBlobStore,
  MemoryDeadLetterStore,
  MemoryTransport,
  type BlobStore,
  type EventEnvelope,
  type Message,
} from '../../src/index.js';
import { SqliteTransport } from '../../src/adapters/sqlite/index.js';
import { waitUntil } from '../support/wait.js';

const Placed = defineEvent('shop.order.placed', { schema: z.object({ n: z.number() }) });
const Note = defineEvent('shop.order.noted', { schema: z.object({ text: z.string() }) });
const dir = mkdtempSync(join(tmpdir(), 'herald-events-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('consume(): for await over a subscription', () => {
  test('yields in order, acks on the next iteration, and break releases the rest for the next reader', async () => {
    const transport = new MemoryTransport();
    const herald = await createHerald({ service: 'shop', transport });
    for (let n = 0; n < 10; n++) await herald.publish(Placed, { n }, { aggregateId: 'a' });
    const seen: number[] = [];
    for await (const event of herald.consume({ group: 'script', events: [Placed] })) {
      // Typed from the definition: no cast needed.
      const n: number = event.payload.n;
      seen.push(n);
      if (seen.length === 4) break;
    }
    assert.deepEqual(seen, [0, 1, 2, 3]);
    // The fourth was never acknowledged (the loop broke before asking for the next): it comes back.
    const rest: number[] = [];
    for await (const event of herald.consume({ group: 'script', events: [Placed] })) {
      rest.push(event.payload.n);
      if (rest.length === 7) break;
    }
    assert.deepEqual(rest, [3, 4, 5, 6, 7, 8, 9]);
    const stats = await transport.stats('shop.events', 'script');
    assert.equal(stats.inFlight + stats.lag, 1, 'only the last unacknowledged one is left');
    await herald.stop();
  });

  test('backpressure: with concurrency 2 at most two events are taken ahead of the loop', async () => {
    const transport = new MemoryTransport();
    const herald = await createHerald({ service: 'shop', transport });
    for (let n = 0; n < 20; n++) await herald.publish(Placed, { n }, { aggregateId: `k${n}` });
    const iterator = herald.consume({ group: 'slow', events: [Placed], concurrency: 2, ordering: 'none' });
    const first = await iterator.next();
    assert.equal(first.done, false);
    await new Promise((r) => setTimeout(r, 100));
    const stats = await transport.stats('shop.events', 'slow');
    assert.equal(stats.inFlight, 2, 'the yielded one and one waiting, no more');
    await iterator.return!();
    const after = await transport.stats('shop.events', 'slow');
    assert.equal(after.inFlight, 0, 'released on return');
    assert.equal(after.lag, 20, 'nothing was acknowledged');
    await herald.stop();
  });

  test('a handler in the spec is refused: the loop body is the handler', async () => {
    const herald = await createHerald({ service: 'shop', transport: new MemoryTransport() });
    assert.throws(
      () => herald.consume({ group: 'g', events: [Placed], handler: () => undefined } as never),
      /takes no handler/,
    );
    await herald.stop();
  });
});

describe('claim check', () => {
  const big = 'x'.repeat(300_000);

  test('large bodies travel through the blob store, small ones inline; consumers see the payload either way', async () => {
    const store = new FileBlobStore(join(dir, 'blobs'));
    const inner = new MemoryTransport();
    const raw: Message[] = [];
    await inner.subscribe('shop.events', { group: 'spy', prefetch: 10 }, async (d) => {
      raw.push(d.message);
      await d.ack();
    });
    const herald = await createHerald({
      service: 'shop',
      transport: claimCheck(inner, { store, thresholdBytes: 64 * 1024 }),
    });
    const got: EventEnvelope<{ text: string }>[] = [];
    herald.subscribe({ group: 'g', events: [Note], handler: (e) => void got.push(e) });
    await herald.start();
    // One aggregate: the blob fetch happens inside the delivery, so per-key order holds.
    const sentBig = await herald.publish(Note, { text: big }, { aggregateId: 'a' });
    await herald.publish(Note, { text: 'small' }, { aggregateId: 'a' });
    await waitUntil(() => got.length === 2 && raw.length === 2, 'both delivered');
    assert.equal(got[0]!.payload.text.length, big.length);
    assert.equal(got[1]!.payload.text, 'small');
    assert.equal(raw[0]!.body.byteLength, 0, 'the broker carried no body');
    assert.equal(raw[0]!.headers[CLAIM_CHECK_HEADER], `shop.events/${sentBig.id}`);
    assert.equal(raw[1]!.headers[CLAIM_CHECK_HEADER], undefined);
    await herald.stop();
  });

  test('on SQLite, a dead letter of a claim-checked event replays with its payload', async () => {
    const store = new FileBlobStore(join(dir, 'blobs-sqlite'));
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'shop',
      transport: claimCheck(new SqliteTransport({ path: join(dir, 'cc.db'), pollIntervalMs: 20 }), {
        store,
        thresholdBytes: 1024,
      }),
      stores: { deadLetters },
    });
    let failing = true;
    const got: string[] = [];
    herald.subscribe({
      group: 'g',
      events: [Note],
      retry: false,
      handler: (e) => {
        if (failing) throw new Error('downstream down');
        got.push(e.payload.text);
      },
    });
    await herald.start();
    await herald.publish(Note, { text: big });
    await waitUntil(async () => (await deadLetters.count()) === 1, 'dead-lettered');
    failing = false;
    const result = await herald.deadLetters.replay({ filter: {} });
    assert.equal(result.replayed, 1);
    await waitUntil(() => got.length === 1, 'replayed and handled');
    assert.equal(got[0]!.length, big.length);
    await herald.stop();
  });

  test('a blob that cannot be fetched is retried, then dead-lettered with reason decode; the group goes on', async () => {
    const files = new FileBlobStore(join(dir, 'blobs-missing'));
    let gets = 0;
    const flaky: BlobStore = {
      put: (k, b) => files.put(k, b),
      get: (k) => (gets++, Promise.reject(new Error(`no blob ${k}`))),
    };
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'shop',
      transport: claimCheck(new MemoryTransport(), {
        store: flaky,
        thresholdBytes: 1024,
        fetchAttempts: 3,
        fetchRetryDelayMs: 10,
      }),
      stores: { deadLetters },
    });
    const got: string[] = [];
    herald.subscribe({
      group: 'g',
      events: [Note],
      ordering: 'none',
      handler: (e) => void got.push(e.payload.text),
    });
    await herald.start();
    await herald.publish(Note, { text: big });
    await herald.publish(Note, { text: 'after' });
    await waitUntil(
      async () => (await deadLetters.count()) === 1 && got.length === 1,
      'one dead, one handled',
    );
    assert.equal(gets, 3);
    const [dead] = (await deadLetters.list()).items;
    assert.equal(dead!.reason, 'decode');
    assert.match(
      dead!.message.headers['herald-claim-check-error']!,
      /could not be fetched: no blob shop.events\//,
    );
    assert.deepEqual(got, ['after']);
    await herald.stop();
  });

  test('a hostile claim-check header cannot reach outside the blob directory', async () => {
    const root = join(dir, 'jail');
    const store = new FileBlobStore(root);
    await store.put('../../escape', new Uint8Array([1]));
    await assert.rejects(store.get('../../../etc/passwd'));
    assert.deepEqual(readdirSync(root), ['%2E%2E']);
  });
});
