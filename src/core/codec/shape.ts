import { DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';

const OPTIONAL_STRINGS = ['aggregateId', 'tenantId', 'userId', 'correlationId', 'causationId'] as const;

/** Checks that a decoded value has the envelope's shape; codecs call it so bad input never reaches handlers. */
export function assertEnvelopeShape(value: unknown): EventEnvelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DecodeError('envelope must be an object');
  }
  const v = value as Record<string, unknown>;
  for (const field of ['id', 'type', 'version', 'source', 'time'] as const) {
    if (typeof v[field] !== 'string' || (v[field] as string).length === 0) {
      throw new DecodeError(`envelope field "${field}" must be a non-empty string`);
    }
  }
  for (const field of OPTIONAL_STRINGS) {
    if (v[field] !== undefined && typeof v[field] !== 'string') {
      throw new DecodeError(`envelope field "${field}" must be a string when present`);
    }
  }
  if (!('payload' in v)) throw new DecodeError('envelope has no "payload"');
  if (v.metadata === undefined) {
    v.metadata = {};
  } else if (typeof v.metadata !== 'object' || v.metadata === null || Array.isArray(v.metadata)) {
    throw new DecodeError('envelope field "metadata" must be an object of strings');
  }
  return v as unknown as EventEnvelope;
}
