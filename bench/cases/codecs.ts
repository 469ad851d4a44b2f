/**
 * Codec cost per event: encode + decode time and bytes on the wire, JSON vs Protobuf, with each
 * compression, on the demo's `conversation.message.sent` event (a ~300-byte envelope as the demo
 * sends it, and a 4 KiB answer where compression starts to pay).
 */
import protobufjs from 'protobufjs';
import { compressed, jsonCodec, uuidv7, type Codec, type EventEnvelope } from '../../src/index.js';
import { lz4, protobuf, snappy, zstd } from '../../src/codecs/index.js';

const MessageSentType = protobufjs
  .parse(
    `syntax = "proto3";
     message MessageSent { string conversation_id = 1; string message_id = 2; int32 sequence = 3; string role = 4; string text = 5; }`,
  )
  .root.lookupType('MessageSent');

function event(text: string): EventEnvelope {
  return {
    id: uuidv7(),
    type: 'conversation.message.sent',
    version: 'v1',
    source: 'conversation-service',
    aggregateId: 'conv-0190a5d6e2f1',
    tenantId: 'acme',
    userId: 'user-42',
    time: new Date().toISOString(),
    payload: {
      conversationId: 'conv-0190a5d6e2f1',
      messageId: 'msg-0190a5d6e301',
      sequence: 7,
      role: 'assistant',
      text,
    },
    metadata: { demoRun: '5f3a9c21' },
  };
}

const SHORT = 'Open Settings → API keys and click Rotate.';
const LONG = Array.from(
  { length: 60 },
  (_, i) => `Step ${i + 1}: open Settings → API keys, pick the key and click Rotate; `,
).join('');

function measure(codec: Codec, e: EventEnvelope): { ns: number; bytes: number } {
  const bytes = codec.encode(e).byteLength;
  let sink = 0;
  const round = (n: number): number => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += codec.decode(codec.encode(e)).version.length;
    return Number(process.hrtime.bigint() - t) / n;
  };
  round(2000); // warm up
  const runs = [round(5000), round(5000), round(5000)].sort((a, b) => a - b);
  if (sink < 0) console.log(sink);
  return { ns: runs[1]!, bytes };
}

export async function run(): Promise<string> {
  const bases: [string, Codec][] = [
    ['JSON', jsonCodec],
    ['Protobuf', protobuf(MessageSentType)],
  ];
  const compressions: [string, Parameters<typeof compressed>[1] | undefined][] = [
    ['none', undefined],
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['snappy', snappy()],
    ['lz4', lz4()],
    ['zstd', zstd()],
  ];
  const rows: string[] = [];
  for (const [label, text] of [
    ['short (demo answer)', SHORT],
    ['4 KiB answer', LONG],
  ] as const) {
    const e = event(text);
    for (const [name, base] of bases) {
      for (const [algo, compressor] of compressions) {
        // minBytes 0: measure the algorithm itself; the default threshold (512 B) skips short events.
        const codec = compressor === undefined ? base : compressed(base, compressor, { minBytes: 0 });
        const { ns, bytes } = measure(codec, e);
        rows.push(`| ${label} | ${name} | ${algo} | ${(ns / 1000).toFixed(2)} | ${bytes} |`);
      }
    }
  }
  return [
    'Encode + decode of one envelope (median of 3 rounds × 5,000), and its size on the wire. Compression',
    'is forced on (`minBytes: 0`) to show each algorithm; with the default threshold of 512 bytes the short',
    'event is sent uncompressed.',
    '',
    '| event | codec | compression | µs per encode+decode | bytes |',
    '|---|---|---|---:|---:|',
    ...rows,
  ].join('\n');
}
