import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import type { IdGenerator, Sampler, SamplingDecision, SamplingResult } from '@opentelemetry/sdk-trace-base';
import { randomHex } from '../core/ids.js';

/*
 * Herald starts a span per publish call even when it is not sampled, so the SDK's per-span costs
 * are paid for every event. Two of them are the SDK's defaults for ids and the ratio decision:
 * `RandomIdGenerator` draws Math.random per 4 bytes (≈ 200 ns for both ids) and
 * `TraceIdRatioBasedSampler` XORs the trace id in 8-digit slices with parseInt (≈ 400 ns). These
 * replacements plug into the SDK's own extension points and cost ≈ 50 ns together (ADR 0404).
 */

// The SDK's SamplingDecision values, so that this module loads nothing of the SDK (an optional peer).
const NOT_RECORD = 0 as SamplingDecision;
const RECORD_AND_SAMPLED = 2 as SamplingDecision;

/**
 * Keeps a trace when the last 8 hex digits of its id, read as an unsigned 32-bit number, fall below
 * `ratio × 2^32`. Deterministic per trace id, like the SDK's sampler, so every service using it
 * agrees on a root's fate; the digits are random in ids from any W3C-conformant generator.
 */
export class TraceIdRatioSampler implements Sampler {
  private readonly bound: number;

  constructor(private readonly ratio: number) {
    if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`sampling ratio must be in [0, 1], got ${ratio}`);
    this.bound = ratio * 2 ** 32;
  }

  shouldSample(
    _context: Context,
    traceId: string,
    _name?: string,
    _kind?: SpanKind,
    _attributes?: Attributes,
    _links?: Link[],
  ): SamplingResult {
    return {
      decision: this.keeps(traceId) ? RECORD_AND_SAMPLED : NOT_RECORD,
    };
  }

  /** The decision alone, for callers that decide before starting a span. */
  keeps(traceId: string): boolean {
    // By hand: parseInt on a slice costs ~100 ns, a third of an unsampled publish's tracing.
    if (traceId.length < 8) return false;
    let word = 0;
    for (let i = traceId.length - 8; i < traceId.length; i++) {
      const c = traceId.charCodeAt(i) | 0x20; // lower case; digits are unchanged by the bit
      const digit = c <= 0x39 ? c - 0x30 : c - 0x57;
      if (digit < 0 || digit > 15) return false;
      word = word * 16 + digit;
    }
    return word < this.bound;
  }

  toString(): string {
    return `HeraldTraceIdRatioSampler{${this.ratio}}`;
  }
}

/** W3C ids from Herald's pooled crypto randomness. */
export class PooledIdGenerator implements IdGenerator {
  private primed: string | undefined;

  generateTraceId(): string {
    const id = this.primed;
    if (id === undefined) return nonZero(32);
    this.primed = undefined;
    return id;
  }

  /**
   * The next trace id to hand out: a caller that sampled a root trace id itself makes the span it
   * starts right after (synchronously) carry that very id, so the SDK's decision matches its own.
   */
  prime(traceId: string): void {
    this.primed = traceId;
  }

  generateSpanId(): string {
    return nonZero(16);
  }

  /** A trace id and a span id drawn together: 48 hex digits, the trace id first. */
  generateIdPair(): string {
    for (;;) {
      const ids = randomHex(24);
      // The first digit of each id settles it fifteen times in sixteen, without a string compare.
      if (
        (ids.charCodeAt(0) !== 0x30 || !ids.startsWith(ZERO_TRACE_ID)) &&
        (ids.charCodeAt(32) !== 0x30 || !ids.endsWith(ZERO_SPAN_ID))
      )
        return ids;
    }
  }
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** An all-zero id is invalid in W3C trace context; redraw (chance 2^-64 or less). */
function nonZero(digits: 32 | 16): string {
  for (;;) {
    const id = randomHex(digits / 2);
    if (id !== (digits === 32 ? ZERO_TRACE_ID : ZERO_SPAN_ID)) return id;
  }
}
