import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import protobufjs from 'protobufjs';
import {
  compressed,
  createHerald,
  DecodeError,
  defineEvent,
  jsonCodec,
  MemoryDeadLetterStore,
  MemoryTransport,
  SchemaValidationError,
  type Codec,
  type EventEnvelope,
  type Message,
} from '../../src/index.js';
import { lz4, protobuf, snappy, zstd } from '../../src/codecs/index.js';
import { waitUntil } from '../support/wait.js';

const root = protobufjs.parse(`
syntax = "proto3";
package demo;
message MessageSent {
  string conversation_id = 1;
  string text = 2;
  int64 sequence = 3;
  repeated string tags = 4;
  Kind kind = 5;
  enum Kind { USER = 0; ASSISTANT = 1; }
}
message Other { string x = 1; }
`).root;
const MessageSentType = root.lookupType('demo.MessageSent');

const envelope: EventEnvelope = {
  id: '0190a5d6-0000-7000-8000-000000000001',
  type: 'conversation.message.sent',
  version: 'v1',
  source: 'conversation-service',
  aggregateId: 'conv-1',
  tenantId: 't-1',
  correlationId: 'corr-1',
  time: '2026-11-30T10:00:00.000Z',
  payload: {
    conversationId: 'conv-1',
    text: 'héllo wörld ✓ '.repeat(80),
    sequence: '9007199254740993',
    tags: ['a', 'b'],
    kind: 'ASSISTANT',
  },
  metadata: { run: 'r1' },
};

const compressors = { gzip: 'gzip', br: 'br', snappy: snappy(), lz4: lz4(), zstd: zstd() } as const;

describe('codecs', () => {
  test('protobuf round-trips the envelope, 64-bit integers losslessly and enums by name', () => {
    const codec = protobuf(MessageSentType);
    assert.equal(codec.contentType, 'application/protobuf; proto=demo.MessageSent');
    const back = codec.decode(codec.encode(envelope));
    assert.deepEqual(back, envelope);
  });

  for (const [name, algorithm] of Object.entries(compressors)) {
    test(`JSON and protobuf round-trip with ${name}, above and below the size threshold`, () => {
      for (const inner of [jsonCodec, protobuf(MessageSentType)]) {
        const codec = compressed(inner, algorithm, { minBytes: 512 });
        assert.match(codec.contentType, new RegExp(`\\+${name}(;|$)`));
        const big = codec.encode(envelope);
        assert.equal(big[0], 1, 'compressed above the threshold');
        assert.ok(big.byteLength < inner.encode(envelope).byteLength, 'smaller on the wire');
        assert.deepEqual(codec.decode(big), envelope);
        const small = {
          ...envelope,
          payload: { conversationId: 'c', text: 'hi', sequence: '1', tags: [], kind: 'USER' },
        };
        const tiny = codec.encode(small);
        assert.equal(tiny[0], 0, 'stored as is below the threshold');
        assert.deepEqual(codec.decode(tiny), small);
        assert.throws(() => codec.decode(new Uint8Array([1, 9, 9, 9, 9])), DecodeError);
      }
    });
  }

  test('a compressed protobuf content type keeps its parameter after the suffix', () => {
    const codec = compressed(protobuf(MessageSentType), zstd());
    assert.equal(codec.contentType, 'application/protobuf+zstd; proto=demo.MessageSent');
  });

  test('garbage bytes under a protobuf content type are a DecodeError, never a crash', () => {
    const codec = protobuf(MessageSentType);
    for (const bytes of [
      new Uint8Array([0xff, 0xff, 0xff]),
      new TextEncoder().encode('{"id":1}'),
      new Uint8Array(),
    ])
      assert.throws(() => codec.decode(bytes), DecodeError);
  });

  test('a payload that does not fit the message type is a schema error at publish, nothing sent', async () => {
    const transport = new MemoryTransport();
    const herald = await createHerald({ service: 's', transport });
    const Sent = defineEvent('conversation.message.sent', { codec: protobuf(MessageSentType) });
    await assert.rejects(herald.publish(Sent, { conversationId: 42 }), SchemaValidationError);
    await herald.stop();
  });
});

describe('codecs on the bus', () => {
  async function setup(topicCodecs?: Record<string, Codec>) {
    const transport = new MemoryTransport();
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'conversation-service',
      transport,
      stores: { deadLetters },
      ...(topicCodecs ? { topicCodecs } : {}),
    });
    return { herald, transport, deadLetters };
  }

  test('per-event codecs: JSON and Protobuf events mixed on one topic are each decoded by their content type', async () => {
    const { herald, transport } = await setup();
    const Sent = defineEvent<Record<string, unknown>>('conversation.message.sent', {
      codec: compressed(protobuf(MessageSentType), snappy(), { minBytes: 64 }),
    });
    const Created = defineEvent<{ id: string }>('conversation.conversation.created');
    const raw: Message[] = [];
    await transport.subscribe('conversation.events', { group: 'spy', prefetch: 10 }, async (d) => {
      raw.push(d.message);
      await d.ack();
    });
    const got: EventEnvelope[] = [];
    herald.subscribe({ group: 'g', events: [Sent, Created], handler: (e) => void got.push(e) });
    await herald.start();
    await herald.publish(Created, { id: 'c1' }, { aggregateId: 'c1' });
    await herald.publish(Sent, envelope.payload as Record<string, unknown>, { aggregateId: 'c1' });
    await waitUntil(() => got.length === 2 && raw.length === 2, 'both events');
    assert.deepEqual(
      raw.map((m) => m.headers['content-type']),
      ['application/json', 'application/protobuf+snappy; proto=demo.MessageSent'],
    );
    assert.deepEqual(got[0]!.payload, { id: 'c1' });
    assert.deepEqual(got[1]!.payload, envelope.payload);
    await herald.stop();
  });

  test('a consumer without the Protobuf schema dead-letters the message with reason decode and goes on', async () => {
    const { herald: producer, transport } = await setup();
    const Sent = defineEvent('conversation.message.sent', { codec: protobuf(MessageSentType) });
    const deadLetters = new MemoryDeadLetterStore();
    const consumer = await createHerald({ service: 'reader', transport, stores: { deadLetters } });
    const got: string[] = [];
    consumer.subscribe({ group: 'plain', events: ['conversation.*'], handler: (e) => void got.push(e.type) });
    await consumer.start();
    await producer.publish(Sent, envelope.payload as Record<string, unknown>);
    await producer.publish('conversation.conversation.created', { id: 'c2' });
    await waitUntil(
      async () => got.length === 1 && (await deadLetters.count()) === 1,
      'one handled, one dead',
    );
    const [dead] = (await deadLetters.list()).items;
    assert.equal(dead!.reason, 'decode');
    assert.match(
      dead!.error.message,
      /no codec registered for content-type "application\/protobuf; proto=demo.MessageSent"/,
    );
    assert.deepEqual(got, ['conversation.conversation.created']);
    await consumer.stop();
    await producer.stop();
  });

  test('topic codecs compress a whole topic; the event definition codec wins over its topic', async () => {
    const { herald, transport } = await setup({
      'conversation.events': compressed(jsonCodec, zstd(), { minBytes: 0 }),
    });
    const Sent = defineEvent('conversation.message.sent', { codec: protobuf(MessageSentType) });
    const raw: Message[] = [];
    await transport.subscribe('conversation.events', { group: 'spy', prefetch: 10 }, async (d) => {
      raw.push(d.message);
      await d.ack();
    });
    const got: unknown[] = [];
    herald.subscribe({
      group: 'g',
      events: ['conversation.*', Sent],
      handler: (e) => void got.push(e.payload),
    });
    await herald.start();
    await herald.publish('conversation.conversation.created', { id: 'c3' });
    await herald.publish(Sent, envelope.payload as Record<string, unknown>);
    await waitUntil(() => got.length === 2, 'both handled');
    assert.deepEqual(
      raw.map((m) => m.headers['content-type']),
      ['application/json+zstd', 'application/protobuf; proto=demo.MessageSent'],
    );
    await herald.stop();
  });
});
