import { ConfigError } from '../contracts/errors.js';
import type { PublishOptions, SubscribeOptions } from './transport.js';

/** Argument checks every transport applies the same way, so errors read the same everywhere. */
export function validateSubscribeOptions(topic: string, options: SubscribeOptions): void {
  if (typeof topic !== 'string' || topic.length === 0)
    throw new ConfigError('topic', 'must be a non-empty string');
  if (typeof options.group !== 'string' || options.group.length === 0) {
    throw new ConfigError('group', 'must be a non-empty string');
  }
  if (!Number.isInteger(options.prefetch) || options.prefetch < 1) {
    throw new ConfigError('prefetch', `must be an integer >= 1, got ${String(options.prefetch)}`);
  }
  if (options.ordering !== undefined && options.ordering !== 'key' && options.ordering !== 'none') {
    throw new ConfigError('ordering', `must be "key" or "none", got ${JSON.stringify(options.ordering)}`);
  }
}

export function validateDelay(delayMs: number | undefined): number {
  const d = delayMs ?? 0;
  if (!Number.isFinite(d) || d < 0)
    throw new ConfigError('delayMs', `must be a finite number >= 0, got ${String(delayMs)}`);
  return d;
}

/**
 * The `deliverAt` of a publish as the transports store it: undefined (or a time already past) means
 * publish now. Rejects unknown options and what is not a finite, non-negative epoch-milliseconds
 * number.
 */
export function scheduledTime(options: PublishOptions | undefined, now: number): number | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const unknown = Object.keys(options).filter((k) => k !== 'deliverAt');
  if (unknown.length > 0) throw new ConfigError(unknown[0]!, 'is not a publish option; known: deliverAt');
  const at = options.deliverAt;
  if (at === undefined) return undefined;
  if (typeof at !== 'number' || !Number.isFinite(at) || at < 0)
    throw new ConfigError(
      'deliverAt',
      `must be epoch milliseconds (a finite number >= 0), got ${String(at)}`,
    );
  return at > now ? Math.ceil(at) : undefined;
}

/** The ids argument of `cancelScheduled`, checked the same way everywhere. */
export function validateCancelIds(topic: string, ids: readonly string[]): void {
  if (typeof topic !== 'string' || topic.length === 0)
    throw new ConfigError('topic', 'must be a non-empty string');
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || id.length === 0))
    throw new ConfigError('ids', 'must be an array of non-empty message ids');
}
