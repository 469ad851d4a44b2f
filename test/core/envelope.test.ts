import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as v from 'valibot';
import { z } from 'zod';
import {
  compressed,
  ConfigError,
  DecodeError,
  defineEvent,
  fromBinaryCloudEvent,
  fromCloudEvent,
  jsonCodec,
  Router,
  RoutingError,
  SchemaValidationError,
  toBinaryCloudEvent,
  toCloudEvent,
  uuidv7,
  type EventEnvelope,
} from '../../src/index.js';
import { isoNow } from '../../src/core/ids.js';

const full: EventEnvelope = {
  id: uuidv7(),
  type: 'conversation.message.sent',
  version: 'v2',
  source: 'conversation-service',
  aggregateId: 'conv-1',
  tenantId: 'tenant-ä',
  userId: 'user 1',
  time: '2026-11-22T10:00:00.000Z',
  payload: { text: 'héllo "world" 100%', n: [1, 2, { deep: null }] },
  metadata: { 'x-request-id': 'r-1', locale: 'zh-CN 中文' },
  correlationId: 'corr-1',
  causationId: 'cause-1',
};

describe('defineEvent', () => {
  test('rejects type names that are not <domain>.<entity>.<action>', () => {
    for (const bad of ['', 'single', 'Upper.Case', 'a..b', '.a.b', 'a.b.', 'a b.c', 'a.b.*']) {
      assert.throws(
        () => defineEvent(bad),
        (err: unknown) => err instanceof ConfigError && err.field === 'type',
        bad,
      );
    }
    assert.equal(defineEvent('conversation.created').version, 'v1');
  });

  test('validates payloads with zod and valibot (Standard Schema)', async () => {
    const withZod = defineEvent('doc.file.uploaded', { schema: z.object({ size: z.number().int() }) });
    const withValibot = defineEvent('doc.file.uploaded', {
      schema: v.object({ size: v.pipe(v.number(), v.integer()) }),
    });
    for (const def of [withZod, withValibot]) {
      assert.deepEqual(await def.parse({ size: 3 }), { size: 3 });
      await assert.rejects(def.parse({ size: 'x' }), (err: unknown) => {
        assert.ok(err instanceof SchemaValidationError);
        assert.equal(err.code, 'HERALD_SCHEMA_INVALID');
        assert.match(err.message, /size/);
        return true;
      });
    }
  });

  test('rejects a schema that is not Standard Schema', () => {
    assert.throws(() => defineEvent('a.b.c', { schema: {} as never }), /schema/);
  });
});

describe('uuidv7', () => {
  test('has the v7 layout and sorts in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    for (const id of ids)
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    const t = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(
      parseInt(
        uuidv7(t + 10_000)
          .replace(/-/g, '')
          .slice(0, 12),
        16,
      ) >= t,
      true,
    );
  });
});

describe('isoNow', () => {
  test('is the ISO time of its millisecond, the same within one and the next one after', () => {
    const t = Date.parse('2026-11-30T10:00:00.123Z');
    for (const ms of [t, t, t + 1, t - 5, 0]) assert.equal(isoNow(ms), new Date(ms).toISOString());
    assert.ok(Math.abs(Date.parse(isoNow()) - Date.now()) < 1000);
  });
});

describe('routing', () => {
  test('unmatched types go to <domain>.events; the most specific rule wins', () => {
    const router = new Router({
      'conversation.*': 'conv',
      'conversation.message.*': 'messages',
      '*': 'fallback',
    });
    assert.equal(router.topicFor('conversation.created'), 'conv');
    assert.equal(router.topicFor('conversation.message.sent'), 'messages');
    assert.equal(router.topicFor('document.uploaded'), 'fallback');
    assert.equal(new Router().topicFor('document.file.uploaded'), 'document.events');
  });

  test('subscription patterns resolve to one topic or ask for topics', () => {
    const router = new Router({ 'billing.invoice.*': 'invoices', 'billing.payment.*': 'payments' });
    assert.equal(router.topicForPattern('conversation.*'), 'conversation.events');
    assert.equal(router.topicForPattern('billing.invoice.*'), 'invoices');
    assert.throws(() => router.topicForPattern('billing.*'), RoutingError);
    assert.throws(() => router.topicForPattern('*'), /pass `topics`/);
  });

  test('an empty topic in the rules is a config error naming the rule', () => {
    assert.throws(
      () => new Router({ 'a.*': '' }),
      (err: unknown) => err instanceof ConfigError && err.field === 'routing.a.*',
    );
  });
});

describe('codecs', () => {
  test('JSON round trip is lossless', () => {
    assert.deepEqual(jsonCodec.decode(jsonCodec.encode(full)), full);
  });

  test('gzip and brotli round trips, small bodies stored raw', () => {
    const big = { ...full, payload: { text: 'x'.repeat(10_000) } };
    for (const algo of ['gzip', 'br'] as const) {
      const codec = compressed(jsonCodec, algo);
      assert.equal(codec.contentType, `application/json+${algo}`);
      const packed = codec.encode(big);
      assert.ok(packed.byteLength < 1000, `${algo} compressed 10 kB of x to ${packed.byteLength} bytes`);
      assert.deepEqual(codec.decode(packed), big);
      const small = codec.encode(full);
      assert.equal(small[0], 0, 'below minBytes the body is stored raw');
      assert.deepEqual(codec.decode(small), full);
    }
  });

  test('corrupt or foreign bodies raise DecodeError', () => {
    const enc = new TextEncoder();
    const cases: Uint8Array[] = [
      enc.encode('not json'),
      enc.encode('[1,2]'),
      enc.encode('{"id":"x"}'),
      new Uint8Array([0xff, 0xfe, 0xfd]),
      enc.encode(JSON.stringify({ ...full, metadata: 'nope' })),
    ];
    for (const body of cases) assert.throws(() => jsonCodec.decode(body), DecodeError);
    assert.throws(() => compressed(jsonCodec).decode(new Uint8Array([1, 1, 2, 3])), DecodeError);
    assert.throws(() => compressed(jsonCodec, 'lz4' as never), ConfigError);
  });
});

describe('CloudEvents 1.0', () => {
  test('structured mode round trip is lossless', () => {
    const ce = toCloudEvent(full);
    assert.equal(ce.specversion, '1.0');
    assert.equal(ce.subject, 'conv-1');
    assert.equal(ce.tenantid, 'tenant-ä');
    assert.deepEqual(fromCloudEvent(JSON.parse(JSON.stringify(ce))), full);
    assert.deepEqual(fromCloudEvent(JSON.stringify(ce)), full);
  });

  test('binary mode round trip is lossless, with header values percent-encoded', () => {
    const { headers, body } = toBinaryCloudEvent(full);
    assert.equal(headers['ce-id'], full.id);
    assert.equal(headers['content-type'], 'application/json');
    for (const value of Object.values(headers))
      assert.match(value, /^[\x21-\x7e]*$/, 'header values are printable ASCII');
    const upper = Object.fromEntries(Object.entries(headers).map(([k, val]) => [k.toUpperCase(), val]));
    assert.deepEqual(fromBinaryCloudEvent(upper, body), full);
  });

  test('a minimal foreign CloudEvent maps with defaults; bad ones are rejected', () => {
    const e = fromCloudEvent({
      specversion: '1.0',
      id: '1',
      source: '/x',
      type: 'com.example.thing',
      data: { a: 1 },
    });
    assert.equal(e.version, 'v1');
    assert.deepEqual(e.metadata, {});
    assert.throws(() => fromCloudEvent({ specversion: '0.3' } as never), DecodeError);
    assert.throws(() => fromCloudEvent('{'), DecodeError);
  });
});
