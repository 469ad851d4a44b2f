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

/** Checks `publish` options; returns `deliverAt` (undefined when absent). */
export function validatePublishOptions(options: PublishOptions | undefined): number | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const unknown = Object.keys(options).filter((k) => k !== 'deliverAt');
  if (unknown.length > 0) throw new ConfigError(unknown[0]!, 'is not a publish option; known: deliverAt');
  const at = options.deliverAt;
  if (at !== undefined && !Number.isFinite(at))
    throw new ConfigError('deliverAt', `must be epoch milliseconds (a finite number), got ${String(at)}`);
  return at;
}
