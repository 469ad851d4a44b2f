import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { fingerprint, normaliseMessage } from '../../src/console/index.js';
import { waitUntil } from '../support/wait.js';
import { auth, call, startHarness, type Harness } from './harness.js';

/** The admin API over real HTTP: authorisation, CSRF, read-only mode, filters, edit-and-replay, fuzzing. */

const MUTATIONS: readonly [string, unknown][] = [
  ['api/dead-letters/replay', { filter: {} }],
  ['api/dead-letters/purge', { filter: {}, expect: 6 }],
  ['api/dead-letters/x/replay-edited', { payload: {} }],
];

describe('console admin API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.publish(6);
    await waitUntil(async () => (await h.herald.deadLetters.count()) === 6, 'six dead letters');
  });
  after(() => h.close());

  test('fingerprints ignore ids and numbers but not the kind of failure', () => {
    assert.equal(
      normaliseMessage('Order 0196f3c2-8c1e-7b3a-9d4e-123456789abc not found after 3 tries'),
      'Order <n> not found after <n> tries',
    );
    const a = fingerprint(
      'Error',
      'Customer record for order ord-1 not found',
      'at handler (/app/a.ts:50:25)',
    );
    const b = fingerprint(
      'Error',
      'Customer record for order ord-77 not found',
      'at handler (/app/a.ts:52:9)',
    );
    const c = fingerprint('TypeError', 'Cannot read properties of undefined', 'at handler (/app/a.ts:50:25)');
    assert.equal(a, b);
    assert.notEqual(a, c);
  });

  test('no mutation is accepted without the right token, and nothing changes', async () => {
    const wrong: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Basic ${h.handler.token}` },
      { authorization: 'Bearer' },
    ];
    for (const [path, body] of MUTATIONS)
      for (const headers of wrong)
        assert.equal(
          (await call(h, 'POST', path, body, headers)).status,
          401,
          `${path} ${JSON.stringify(headers)}`,
        );
    assert.equal(await h.herald.deadLetters.count(), 6);
    assert.equal(h.handler.service.audit.list().length, 0);
  });

  test('CSRF: a form post, another origin or a cross-site fetch is refused even with the token', async () => {
    const form = await call(h, 'POST', 'api/dead-letters/replay', 'ids=a', {
      ...auth(h),
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(form.status, 415);
    const origin = await call(
      h,
      'POST',
      'api/dead-letters/replay',
      { ids: [] },
      { ...auth(h), origin: 'http://evil.example' },
    );
    assert.equal(origin.status, 403);
    const site = await call(
      h,
      'POST',
      'api/dead-letters/replay',
      { ids: [] },
      { ...auth(h), 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(site.status, 403);
    assert.equal(await h.herald.deadLetters.count(), 6);
  });

  test('filters, search, groups and the masked detail', async () => {
    const all = await call(h, 'GET', 'api/dead-letters?limit=4');
    assert.equal(all.json['total'], 6);
    assert.equal((all.json['items'] as unknown[]).length, 4);
    const next = await call(h, 'GET', `api/dead-letters?limit=4&cursor=${all.json['nextCursor'] as string}`);
    assert.equal((next.json['items'] as unknown[]).length, 2);
    const first = (all.json['items'] as { id: string; eventId: string; aggregateId: string }[])[0]!;
    assert.equal((await call(h, 'GET', `api/dead-letters?eventId=${first.eventId}`)).json['total'], 1);
    assert.equal(
      (await call(h, 'GET', `api/dead-letters?aggregateId=${first.aggregateId}`)).json['total'],
      2,
    );
    assert.equal((await call(h, 'GET', 'api/dead-letters?errorText=CUSTOMER%20RECORD')).json['total'], 6);
    assert.equal((await call(h, 'GET', 'api/dead-letters?q=ord-1003')).json['total'], 1);
    assert.equal((await call(h, 'GET', `api/dead-letters?until=${Date.now() - 3_600_000}`)).json['total'], 0);
    assert.equal((await call(h, 'GET', 'api/dead-letters?colour=red')).status, 400);
    const groups = (await call(h, 'GET', 'api/dead-letters/groups')).json['groups'] as { count: number }[];
    assert.deepEqual(
      groups.map((g) => g.count),
      [6],
    );
    const detail = await call(h, 'GET', `api/dead-letters/${encodeURIComponent(first.id)}`);
    const body = (detail.json['message'] as { body: { payload: { email: string } } }).body;
    assert.equal(body.payload.email, '••••••');
    const exported = await (await fetch(new URL('api/dead-letters/export', h.url))).text();
    assert.equal(exported.trim().split('\n').length, 6);
    assert.ok(!exported.includes('@example.com'), 'exports are masked too');
  });

  test('edit and replay: the schema is enforced, masked fields keep their value, the audit says who', async () => {
    const { json } = await call(h, 'GET', 'api/dead-letters?limit=1');
    const id = (json['items'] as { id: string }[])[0]!.id;
    const path = `api/dead-letters/${encodeURIComponent(id)}/replay-edited`;
    const bad = await call(
      h,
      'POST',
      path,
      { payload: { orderId: '', amount: -1, email: '••••••' } },
      auth(h),
    );
    assert.equal(bad.status, 422);
    assert.ok(Array.isArray((bad.json['details'] as { issues: unknown[] }).issues));
    h.fix();
    const ok = await call(
      h,
      'POST',
      path,
      { payload: { orderId: 'ord-fixed', amount: 5, email: '••••••' } },
      { ...auth(h), 'x-herald-actor': 'alice' },
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json['validated'], true);
    await waitUntil(() => h.handled.has('ord-fixed'), 'the edited event handled');
    const audit = (await call(h, 'GET', 'api/audit')).json['records'] as {
      actor: string;
      action: string;
      count: number;
    }[];
    assert.equal(audit[0]!.actor, 'alice');
    assert.equal(audit[0]!.action, 'replay-edited');
  });

  test('purge needs the dry-run count; replay by filter', async () => {
    const dry = await call(h, 'POST', 'api/dead-letters/dry-run', { filter: { aggregateId: 'customer-1' } });
    assert.equal(dry.status, 200);
    const n = dry.json['count'] as number;
    assert.ok(n >= 1);
    assert.equal(
      (
        await call(
          h,
          'POST',
          'api/dead-letters/purge',
          { filter: { aggregateId: 'customer-1' }, expect: n + 1 },
          auth(h),
        )
      ).status,
      409,
    );
    const purged = await call(
      h,
      'POST',
      'api/dead-letters/purge',
      { filter: { aggregateId: 'customer-1' }, expect: n },
      auth(h),
    );
    assert.equal(purged.json['purged'], n);
    const left = await h.herald.deadLetters.count();
    const replayed = await call(h, 'POST', 'api/dead-letters/replay', { filter: {} }, auth(h));
    assert.equal(replayed.json['replayed'], left);
    assert.equal(await h.herald.deadLetters.count(), 0);
  });
});

describe('read-only console', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ readOnly: true });
    await h.publish(3);
    await waitUntil(async () => (await h.herald.deadLetters.count()) === 3, 'three dead letters');
  });
  after(() => h.close());

  test('refuses every mutation, token or not', async () => {
    for (const [path, body] of MUTATIONS) {
      assert.equal((await call(h, 'POST', path, body, auth(h))).status, 403);
      assert.equal((await call(h, 'POST', path, body)).status, 403);
    }
    assert.equal((await call(h, 'GET', 'api/session')).json['readOnly'], true);
    assert.equal((await call(h, 'POST', 'api/dead-letters/dry-run', { filter: {} })).json['count'], 3);
    assert.equal(await h.herald.deadLetters.count(), 3);
  });
});

describe('fuzzing the admin API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.publish(5);
    await waitUntil(async () => (await h.herald.deadLetters.count()) === 5, 'five dead letters');
  });
  after(() => h.close());

  test('10,000 random requests without the token: no 5xx, no mutation', { timeout: 170_000 }, async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'dead-letters',
        'groups',
        'export',
        'replay',
        'purge',
        'dry-run',
        'audit',
        'session',
        'overview',
        'replay-edited',
        'assets',
        'app.js',
        '%',
        '%E0%A4%A',
        '..',
        '',
      ),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
    );
    const path = fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`);
    const query = fc.dictionary(
      fc.constantFrom(
        'group',
        'topic',
        'eventType',
        'reason',
        'since',
        'until',
        'cursor',
        'limit',
        'order',
        'q',
        'fingerprint',
        'errorText',
        'x',
      ),
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.integer().map(String),
        fc.constantFrom('max-attempts', 'newest', 'W1swLCJhIl0', '-1', '1e400'),
      ),
      { maxKeys: 4 },
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 50 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ ids: fc.array(fc.string(), { maxLength: 3 }) }).map((v) => JSON.stringify(v)),
      fc
        .record({
          filter: fc.dictionary(fc.constantFrom('group', 'since', 'reason', 'q', 'bogus'), fc.jsonValue()),
        })
        .map((v) => JSON.stringify(v)),
    );
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
      path,
      query,
      body,
      type: fc.constantFrom('application/json', 'text/plain', undefined),
      authorization: fc.constantFrom(undefined, 'Bearer wrong', 'Bearer ', 'Basic x'),
    });
    const samples = fc.sample(request, { numRuns: 10_000, seed: 16 });
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
        if (url.pathname.endsWith('/api/stream')) await res.body?.cancel();
        else await res.arrayBuffer();
        if (res.status >= 500) errors.push(`${r.method} ${url.pathname}${url.search} → ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.deepEqual(errors.slice(0, 10), []);
    assert.equal(await h.herald.deadLetters.count(), 5, 'nothing replayed or purged');
    assert.equal(h.handler.service.audit.list().length, 0);
  });
});
