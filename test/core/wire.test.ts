import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  compressed,
  createHerald,
  decodeMessage,
  DecodeError,
  defineEvent,
  encodeMessage,
  Headers,
  isBinaryMessage,
  jsonCodec,
  jsonEnvelopeOf,
  MemoryDeadLetterStore,
  MemoryTransport,
  withJsonPayload,
  type EventEnvelope,
  type Message,
} from '../../src/index.js';
import { waitUntil } from '../support/wait.js';

const Placed = defineEvent('shop.order.placed', {
  version: 'v1',
  schema: z.object({ orderId: z.string(), total: z.number() }),
});

const full: EventEnvelope = {
  id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  type: 'shop.order.placed',
  version: 'v1',
  source: 'shop',
  aggregateId: 'o-1',
  tenantId: 't-1',
  userId: 'u-1',
  time: '2026-11-30T10:00:00.000Z',
  payload: { orderId: 'o-1', total: 5, note: 'ü – "quoted"\n' },
  metadata: { a: 'b', 'x-y': 'line\nbreak' },
  correlationId: 'c-1',
  causationId: 'k-1',
};

/** The envelope a consumer of the whole pipeline hands its handler, for a message written raw. */
async function consumeRaw(
  message: Message,
): Promise<{ handled: EventEnvelope[]; deadLetters: MemoryDeadLetterStore }> {
  const transport = new MemoryTransport();
  const deadLetters = new MemoryDeadLetterStore();
  const herald = await createHerald({ service: 'reader', transport, stores: { deadLetters } });
  const handled: EventEnvelope[] = [];
  herald.subscribe({ group: 'g', events: ['shop.*'], handler: (e) => void handled.push(e) });
  await herald.start();
  await transport.publish('shop.events', [message]);
  await waitUntil(async () => handled.length + (await deadLetters.count()) === 1, 'the event');
  await herald.stop();
  return { handled, deadLetters };
}

describe('wire layout (ADR 0010)', () => {
  test('binary headers: the names of Headers, in one order whichever fields are set', () => {
    // encodeMessage writes the usual event's headers as a literal; this keeps its names and their
    // order the same as those of the general path.
    const { tenantId: _t, correlationId: _c, userId: _u, causationId: _k, ...usual } = full;
    const names = (e: EventEnvelope): string[] => Object.keys(encodeMessage(e, jsonCodec).headers);
    const order = [
      Headers.contentType,
      Headers.eventType,
      Headers.eventVersion,
      Headers.source,
      Headers.tenantId,
      Headers.correlationId,
      Headers.eventId,
      Headers.time,
      Headers.aggregateId,
      Headers.userId,
      Headers.causationId,
      Headers.metadata,
    ];
    const expect = (present: string[]): string[] => order.filter((h) => present.includes(h));
    const always = order.slice(0, 4).concat(Headers.eventId, Headers.time);
    assert.deepEqual(names(usual), expect([...always, Headers.aggregateId, Headers.metadata]));
    const { aggregateId: _a, ...noKey } = usual;
    assert.deepEqual(names({ ...noKey, metadata: {} }), expect(always));
    assert.deepEqual(names(full), order);
    assert.deepEqual(
      names({ ...usual, tenantId: 't' }),
      expect([...always, Headers.tenantId, Headers.aggregateId, Headers.metadata]),
    );
  });

  test('binary mode: envelope fields in headers, the body is the payload alone; it round-trips', () => {
    const m = encodeMessage(full, jsonCodec);
    assert.equal(isBinaryMessage(m.headers), true);
    assert.equal(m.id, full.id);
    assert.equal(m.key, 'o-1');
    assert.deepEqual(JSON.parse(new TextDecoder().decode(m.body)), full.payload);
    assert.deepEqual(decodeMessage(jsonCodec, m), full);
    // Empty metadata writes no header and comes back as {}.
    const bare: EventEnvelope = {
      id: 'i',
      type: 'a.b',
      version: 'v1',
      source: 's',
      time: 't',
      payload: null,
      metadata: {},
    };
    const mb = encodeMessage(bare, jsonCodec);
    assert.equal(mb.headers['event-metadata'], undefined);
    assert.equal(mb.key, undefined);
    assert.deepEqual(decodeMessage(jsonCodec, mb), bare);
  });

  test('structured mode writes the whole envelope as the body, as every version before did', () => {
    const m = encodeMessage(full, jsonCodec, 'structured');
    assert.equal(isBinaryMessage(m.headers), false);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(m.body)), full);
    assert.deepEqual(decodeMessage(jsonCodec, m), full);
  });

  test('compressed JSON is binary too: only the payload is compressed', () => {
    const codec = compressed(jsonCodec, 'gzip', { minBytes: 0 });
    const m = encodeMessage(full, codec);
    assert.equal(m.headers['content-type'], 'application/json+gzip');
    assert.equal(isBinaryMessage(m.headers), true);
    assert.deepEqual(decodeMessage(codec, m), full);
  });

  test('a codec without payload encoding (Protobuf, custom) keeps writing structured messages', () => {
    const wholeOnly = {
      contentType: jsonCodec.contentType,
      encode: jsonCodec.encode,
      decode: jsonCodec.decode,
    };
    const m = encodeMessage(full, wholeOnly);
    assert.equal(isBinaryMessage(m.headers), false);
    assert.deepEqual(decodeMessage(wholeOnly, m), full);
  });

  test('bad binary headers are decode errors that name the header', () => {
    const m = encodeMessage(full, jsonCodec);
    const without = (name: string): Message => {
      const headers = { ...m.headers };
      delete headers[name];
      return { ...m, headers };
    };
    assert.throws(
      () => decodeMessage(jsonCodec, without('event-time')),
      (e: unknown) => e instanceof DecodeError && /event-time/.test(e.message),
    );
    assert.throws(() => decodeMessage(jsonCodec, without('event-type')), DecodeError);
    for (const metadata of ['{oops', '[]', '{"a":1}', 'null'])
      assert.throws(
        () => decodeMessage(jsonCodec, { ...m, headers: { ...m.headers, 'event-metadata': metadata } }),
        (e: unknown) => e instanceof DecodeError && /event-metadata/.test(e.message),
      );
    assert.throws(
      () => decodeMessage(jsonCodec, { ...m, body: new TextEncoder().encode('{oops') }),
      DecodeError,
    );
    assert.throws(() => decodeMessage(jsonCodec, { ...m, body: new Uint8Array([0xff, 0xfe]) }), DecodeError);
  });

  test('an old-format message (whole envelope as JSON body, Herald routing headers only) reaches the handler', async () => {
    const old = {
      id: full.id,
      key: 'o-1',
      headers: {
        'content-type': 'application/json',
        'event-type': full.type,
        'event-version': 'v1',
        'event-source': 'shop',
      },
      body: new TextEncoder().encode(JSON.stringify(full)),
    };
    const { handled } = await consumeRaw(old);
    assert.deepEqual(handled, [full]);
    // No headers at all (what a third-party producer may write) reads as JSON envelope too.
    const bare = await consumeRaw({
      id: 'x',
      headers: {},
      body: new TextEncoder().encode(JSON.stringify(full)),
    });
    assert.deepEqual(bare.handled, [full]);
  });

  test('a binary message with a body that is not JSON is dead-lettered as a decode failure', async () => {
    const m = encodeMessage(full, jsonCodec);
    const { handled, deadLetters } = await consumeRaw({ ...m, body: new Uint8Array([1, 2, 3]) });
    assert.equal(handled.length, 0);
    const [entry] = (await deadLetters.list()).items;
    assert.equal(entry!.reason, 'decode');
    assert.deepEqual([...entry!.message.body], [1, 2, 3]);
  });

  test('publish → consume keeps every envelope field, in both layouts', async () => {
    for (const wire of ['binary', 'structured'] as const) {
      const transport = new MemoryTransport();
      const herald = await createHerald({ service: 'shop', transport, wire });
      const handled: EventEnvelope[] = [];
      const raw: Message[] = [];
      await transport.subscribe('shop.events', { group: 'spy', prefetch: 10 }, async (d) => {
        raw.push(d.message);
        await d.ack();
      });
      herald.subscribe({ group: 'g', events: [Placed], handler: (e) => void handled.push(e) });
      await herald.start();
      const sent = await herald.publish(
        Placed,
        { orderId: 'o-1', total: 5 },
        {
          aggregateId: 'o-1',
          tenantId: 't',
          userId: 'u',
          correlationId: 'c',
          causationId: 'k',
          metadata: { m: '1' },
        },
      );
      await waitUntil(() => handled.length === 1 && raw.length === 1, 'the event');
      assert.deepEqual(handled[0], sent, wire);
      assert.equal(isBinaryMessage(raw[0]!.headers), wire === 'binary');
      await herald.stop();
    }
    await assert.rejects(
      createHerald({ service: 's', transport: new MemoryTransport(), wire: 'json' as never }),
      /wire/,
    );
  });

  test('tools read and edit stored messages of both layouts through jsonEnvelopeOf and withJsonPayload', () => {
    for (const mode of ['binary', 'structured'] as const) {
      const m = encodeMessage(full, jsonCodec, mode);
      assert.deepEqual(jsonEnvelopeOf(m), full, mode);
      const edited = withJsonPayload(m, { orderId: 'o-2', total: 7 }, { 'herald-replay-group': 'g' });
      assert.equal(edited.headers['herald-replay-group'], 'g');
      assert.equal(isBinaryMessage(edited.headers), mode === 'binary');
      assert.deepEqual(jsonEnvelopeOf(edited), { ...full, payload: { orderId: 'o-2', total: 7 } }, mode);
    }
    const gz = encodeMessage(full, compressed(jsonCodec, 'gzip', { minBytes: 0 }));
    assert.equal(jsonEnvelopeOf(gz), undefined, 'not plain JSON');
    assert.equal(jsonEnvelopeOf({ headers: {}, body: new Uint8Array([1]) }), undefined);
  });
});
