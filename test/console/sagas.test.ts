import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { SagaRecord, SagaStatus } from '../../src/saga/record.js';
import type { SagaStore } from '../../src/saga/store.js';
import { auth, call, startHarness, type Harness } from './harness.js';

/**
 * The console's saga endpoints over real HTTP on a SQLite saga store: list with filters and cursor
 * paging, counts per type, the detail with its timeline, retry and abort behind the token, the
 * audit log, read-only mode and fuzzing.
 */

/** A saga as a runner leaves it: two steps, the second failed or compensated as `status` says. */
function record(id: string, type: string, status: SagaStatus, createdAt: number): SagaRecord {
  const failed = status !== 'completed' && status !== 'running';
  return {
    id,
    type,
    status,
    input: { orderId: id, email: `${id}@example.com` },
    cursor: failed ? 0 : 2,
    steps: [
      {
        name: 'reserve-stock',
        status: status === 'compensation-failed' ? 'compensation-failed' : failed ? 'compensated' : 'done',
        attempts: 1,
        compensations: status === 'compensation-failed' ? 3 : failed ? 1 : 0,
      },
      {
        name: 'charge-payment',
        status: failed ? 'failed' : 'done',
        attempts: 2,
        compensations: 0,
        ...(failed ? { error: 'card declined' } : {}),
      },
    ],
    pivotPassed: status === 'failed',
    ...(failed ? { error: { step: 'charge-payment', message: 'card declined' } } : {}),
    wakeAt: null,
    version: 0,
    createdAt,
    updatedAt: createdAt,
    metadata: {},
    timeline: [
      { at: createdAt, event: 'saga.started' },
      { at: createdAt + 1, event: 'step.started', step: 'reserve-stock', detail: 'attempt 1' },
      { at: createdAt + 2, event: 'step.failed', step: 'charge-payment', detail: 'card declined' },
    ],
  };
}

const STATUSES: SagaStatus[] = ['completed', 'compensated', 'compensation-failed', 'failed', 'running'];

async function fill(store: SagaStore): Promise<void> {
  const base = Date.now() - 60_000;
  for (let i = 0; i < 25; i++)
    await store.create(record(`order-${i}`, 'order', STATUSES[i % STATUSES.length]!, base + i));
  for (let i = 0; i < 3; i++)
    await store.create(record(`refund-${i}`, 'refund', 'completed', base + 100 + i));
}

describe('console saga API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({}, { sagas: true });
    await fill(h.sagas!);
  });
  after(() => h.close());

  test('counts per type and status; the overview carries the totals', async () => {
    assert.equal((await call(h, 'GET', 'api/session')).json['sagas'], true);
    const { json } = await call(h, 'GET', 'api/saga-types');
    assert.deepEqual(json['types'], [
      {
        type: 'order',
        counts: { completed: 5, compensated: 5, 'compensation-failed': 5, failed: 5, running: 5 },
      },
      { type: 'refund', counts: { completed: 3 } },
    ]);
    assert.equal(json['scanned'], 28);
    assert.equal(json['truncated'], false);
    const overview = await call(h, 'GET', 'api/overview');
    assert.equal((overview.json['sagas'] as Record<string, number>)['completed'], 8);
  });

  test('list: filters, newest first, cursor paging; bad filters are a 400', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const { status, json } = await call(
        h,
        'GET',
        `api/sagas?type=order&limit=4${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(status, 200);
      for (const r of json['items'] as { id: string; type: string }[]) {
        assert.equal(r.type, 'order');
        seen.push(r.id);
      }
      cursor = json['nextCursor'] as string | undefined;
    } while (cursor);
    assert.equal(seen.length, 25);
    assert.equal(new Set(seen).size, 25);
    assert.equal(seen[0], 'order-24', 'newest first');
    const parked = await call(h, 'GET', 'api/sagas?status=compensation-failed');
    const rows = parked.json['items'] as { status: string; step: string; attempts: number; error: string }[];
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.status === 'compensation-failed'));
    assert.equal(rows[0]!.step, 'reserve-stock');
    assert.equal(rows[0]!.attempts, 6);
    assert.equal(rows[0]!.error, 'charge-payment: card declined');
    assert.equal((await call(h, 'GET', 'api/sagas?status=lost')).status, 400);
    assert.equal((await call(h, 'GET', 'api/sagas?colour=red')).status, 400);
    assert.equal((await call(h, 'GET', 'api/sagas?cursor=nonsense')).status, 400);
    assert.equal((await call(h, 'GET', 'api/sagas?limit=0')).status, 400);
  });

  test('detail: steps, timeline, masked input; unknown id is a 404', async () => {
    const { status, json } = await call(h, 'GET', 'api/sagas/order-2');
    assert.equal(status, 200);
    assert.equal(json['status'], 'compensation-failed');
    assert.equal((json['steps'] as unknown[]).length, 2);
    assert.deepEqual(
      (json['timeline'] as { event: string }[]).map((t) => t.event),
      ['saga.started', 'step.started', 'step.failed'],
    );
    assert.equal((json['input'] as { email: string }).email, '••••••');
    assert.equal(json['canRetry'], true);
    assert.equal((await call(h, 'GET', 'api/sagas/order-404')).status, 404);
  });

  test('retry and abort need the token; done with it they change the saga and are audited', async () => {
    const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }];
    for (const headers of wrong) {
      assert.equal((await call(h, 'POST', 'api/sagas/order-2/retry', {}, headers)).status, 401);
      assert.equal((await call(h, 'POST', 'api/sagas/order-3/abort', {}, headers)).status, 401);
    }
    const csrf = await call(
      h,
      'POST',
      'api/sagas/order-2/retry',
      {},
      {
        ...auth(h),
        origin: 'http://evil.example',
      },
    );
    assert.equal(csrf.status, 403);
    assert.equal((await h.sagas!.get('order-2'))!.status, 'compensation-failed');
    assert.equal(h.handler.service.audit.list().length, 0);

    const retried = await call(
      h,
      'POST',
      'api/sagas/order-2/retry',
      {},
      { ...auth(h), 'x-herald-actor': 'bob' },
    );
    assert.equal(retried.status, 200, JSON.stringify(retried.json));
    assert.equal(retried.json['status'], 'compensating');
    assert.equal((await h.sagas!.get('order-2'))!.status, 'compensating');
    const aborted = await call(h, 'POST', 'api/sagas/order-3/abort', { reason: 'refunded by hand' }, auth(h));
    assert.equal(aborted.status, 200, JSON.stringify(aborted.json));
    const stored = (await h.sagas!.get('order-3'))!;
    assert.equal(stored.status, 'aborted');
    assert.equal(stored.timeline.at(-1)!.detail, 'refunded by hand');
    // A completed saga can be neither retried nor aborted; an unknown one is a 404.
    assert.equal((await call(h, 'POST', 'api/sagas/order-0/retry', {}, auth(h))).status, 409);
    assert.equal((await call(h, 'POST', 'api/sagas/order-0/abort', {}, auth(h))).status, 409);
    assert.equal((await call(h, 'POST', 'api/sagas/nope/retry', {}, auth(h))).status, 404);
    assert.equal((await call(h, 'POST', 'api/sagas/order-7/retry', { reason: 'x' }, auth(h))).status, 400);
    const records = (await call(h, 'GET', 'api/audit')).json['records'] as {
      actor: string;
      action: string;
      selection: { saga: string };
    }[];
    assert.deepEqual(
      records.map((r) => [r.action, r.selection.saga]),
      [
        ['saga-abort', 'order-3'],
        ['saga-retry', 'order-2'],
      ],
    );
    assert.equal(records[1]!.actor, 'bob');
  });
});

describe('saga endpoints without a saga store, and read-only', () => {
  test('without a store they answer 404 and the session says so', async () => {
    const h = await startHarness();
    try {
      assert.equal((await call(h, 'GET', 'api/session')).json['sagas'], false);
      assert.equal((await call(h, 'GET', 'api/sagas')).status, 404);
      assert.equal((await call(h, 'POST', 'api/sagas/x/retry', {}, auth(h))).status, 404);
    } finally {
      await h.close();
    }
  });

  test('read-only refuses retry and abort, token or not', async () => {
    const h = await startHarness({ readOnly: true }, { sagas: true });
    try {
      await fill(h.sagas!);
      for (const path of ['api/sagas/order-2/retry', 'api/sagas/order-3/abort']) {
        assert.equal((await call(h, 'POST', path, {}, auth(h))).status, 403);
        assert.equal((await call(h, 'POST', path, {})).status, 403);
      }
      assert.equal((await h.sagas!.get('order-2'))!.status, 'compensation-failed');
      assert.equal((await h.sagas!.get('order-3'))!.status, 'failed');
      assert.equal((await call(h, 'GET', 'api/sagas')).status, 200);
    } finally {
      await h.close();
    }
  });
});

describe('fuzzing the saga endpoints', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({}, { sagas: true });
    await fill(h.sagas!);
  });
  after(() => h.close());

  test('3,000 random requests without the token: no 5xx, no saga changed', { timeout: 170_000 }, async () => {
    const before = JSON.stringify(
      (await h.sagas!.list({}, { limit: 100 })).items.map((r) => [r.id, r.status, r.version]),
    );
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'sagas',
        'saga-types',
        'order-2',
        'order-3',
        'retry',
        'abort',
        '%',
        '%E0%A4%A',
        '..',
        '',
      ),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
    );
    const path = fc
      .array(segment, { maxLength: 3 })
      .map((s) => `/api/sagas${s.length ? `/${s.join('/')}` : ''}`);
    const query = fc.dictionary(
      fc.constantFrom('type', 'status', 'cursor', 'limit', 'x'),
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.integer().map(String),
        fc.constantFrom('failed', 'order', 'WzAsImEiXQ', 'W1swLCJhIl0', '-1', '1e400'),
      ),
      { maxKeys: 3 },
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 50 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ reason: fc.jsonValue() }).map((v) => JSON.stringify(v)),
    );
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD'),
      path,
      query,
      body,
      type: fc.constantFrom('application/json', 'text/plain', undefined),
      authorization: fc.constantFrom(undefined, 'Bearer wrong', 'Bearer ', 'Basic x'),
    });
    const samples = fc.sample(request, { numRuns: 3000, seed: 15 });
    const errors: string[] = [];
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < samples.length) {
        const r = samples[i++]!;
        const url = new URL(`.${r.path}`, h.url);
        for (const [k, v] of Object.entries(r.query)) url.searchParams.set(k, v);
        const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
        const res = await fetch(url, {
          method: r.method,
          headers: {
            ...(r.type ? { 'content-type': r.type } : {}),
            ...(r.authorization ? { authorization: r.authorization } : {}),
          },
          ...(hasBody ? { body: r.body } : {}),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        if (res.status >= 500) errors.push(`${r.method} ${url.pathname}${url.search} → ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    assert.deepEqual(errors.slice(0, 10), []);
    const afterward = JSON.stringify(
      (await h.sagas!.list({}, { limit: 100 })).items.map((r) => [r.id, r.status, r.version]),
    );
    assert.equal(afterward, before, 'no saga retried or aborted');
    assert.equal(h.handler.service.audit.list().length, 0);
  });
});
