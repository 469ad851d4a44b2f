import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { randomHex } from '../../src/core/ids.js';
import { PooledIdGenerator, TraceIdRatioSampler } from '../../src/observability/sampling.js';
import { isUnsampledTraceparent, parseTraceparent } from '../../src/observability/tracing.js';
import { mulberry32 } from '../resilience/prng.js';

describe('traceparent sampled flag', () => {
  const id = '0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331';
  test('reads the sampled bit of version-00 headers', () => {
    for (const [flags, unsampled] of [
      ['00', true],
      ['01', false],
      ['02', true],
      ['03', false],
      ['0a', true],
      ['0b', false],
      ['fe', true],
      ['ff', false],
    ] as const)
      assert.equal(isUnsampledTraceparent(`00-${id}-${flags}`), unsampled, flags);
  });
  test('leaves anything else to the propagator', () => {
    for (const v of [undefined, '', `01-${id}-00`, `00-${id}-0`, `00-${id}-00-extra`, `00-${id}-0A`])
      assert.equal(isUnsampledTraceparent(v), false, String(v));
  });
});

describe('traceparent parsing', () => {
  const propagator = new W3CTraceContextPropagator();
  const viaPropagator = (value: string): unknown => {
    const sc = trace.getSpanContext(
      propagator.extract(
        ROOT_CONTEXT,
        { traceparent: value },
        {
          get: (c: Record<string, string>, k: string) => c[k],
          keys: (c: Record<string, string>) => Object.keys(c),
        },
      ),
    );
    return sc && { traceId: sc.traceId, spanId: sc.spanId, traceFlags: sc.traceFlags, isRemote: sc.isRemote };
  };

  test('agrees with the W3C propagator on every version-00 header it accepts', () => {
    const random = mulberry32(7);
    const hex = '0123456789abcdef';
    const digits = (n: number): string =>
      Array.from({ length: n }, () => hex[Math.floor(random() * 16)]).join('');
    const samples = [
      ...Array.from({ length: 200 }, () => `00-${digits(32)}-${digits(16)}-${digits(2)}`),
      `00-${'0'.repeat(31)}1-${'0'.repeat(15)}1-01`,
    ];
    for (const v of samples) assert.deepEqual(parseTraceparent(v), viaPropagator(v), v);
  });

  test('rejects what the specification rejects, and leaves other versions to the propagator', () => {
    const trace32 = '0af7651916cd43dd8448eb211c80319c';
    const span16 = 'b7ad6b7169203331';
    for (const v of [
      undefined,
      '',
      `00-${'0'.repeat(32)}-${span16}-01`, // all-zero trace id
      `00-${trace32}-${'0'.repeat(16)}-01`, // all-zero span id
      `00-${trace32.toUpperCase()}-${span16}-01`, // upper case
      `00-${trace32}_${span16}-01`, // wrong separator
      `00-${trace32}-${span16}-0g`, // not hex
      `01-${trace32}-${span16}-01`, // another version: the propagator's call
      `00-${trace32}-${span16}-01-extra`,
    ]) {
      assert.equal(parseTraceparent(v), undefined, String(v));
    }
    assert.deepEqual(parseTraceparent(`00-${trace32}-${span16}-03`), {
      traceId: trace32,
      spanId: span16,
      traceFlags: 3,
      isRemote: true,
    });
  });
});

describe('ratio sampler and ids', () => {
  test('keeps exactly the trace ids whose last 8 digits fall below ratio × 2^32', () => {
    for (const ratio of [0, 0.1, 0.5, 1]) {
      const sampler = new TraceIdRatioSampler(ratio);
      for (let i = 0; i < 2000; i++) {
        const id = randomHex(16);
        assert.equal(sampler.keeps(id), Number.parseInt(id.slice(-8), 16) < ratio * 2 ** 32, id);
        assert.equal(sampler.keeps(id.toUpperCase()), sampler.keeps(id), 'hex case does not matter');
      }
    }
    assert.equal(new TraceIdRatioSampler(1).keeps('short'), false);
    assert.equal(new TraceIdRatioSampler(1).keeps('0af7651916cd43dd8448eb21zzzzzzzz'), false);
  });

  test('ids are fresh lower-case hex of the right length, across refills of the random pool', () => {
    const ids = new PooledIdGenerator();
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const pair = ids.generateIdPair();
      assert.match(pair, /^[0-9a-f]{48}$/);
      assert.match(ids.generateTraceId(), /^[0-9a-f]{32}$/);
      assert.match(ids.generateSpanId(), /^[0-9a-f]{16}$/);
      seen.add(pair);
    }
    assert.equal(seen.size, 3000);
    assert.throws(() => randomHex(0), RangeError);
    assert.throws(() => randomHex(33), RangeError);
  });
});
