import { ConfigError, HeraldError } from '../contracts/errors.js';

/**
 * When a published event is delivered: at once (neither field), after `delayMs`, or at
 * `deliverAt`. Give at most one of them. The event is stored by the transport now and reaches
 * consumers at its time; until then `herald.cancelScheduled(event, id)` removes it. See
 * docs/events.md, "Scheduled and delayed publish".
 */
export interface ScheduleOptions {
  /** Deliver this many milliseconds after the publish call (finite, >= 0). */
  readonly delayMs?: number;
  /** Deliver at this time: a Date or epoch milliseconds. A time already past delivers at once. */
  readonly deliverAt?: Date | number;
}

/** The transport cannot hold a message until a time, so Herald refuses instead of delivering early. */
export class ScheduledPublishUnsupportedError extends HeraldError {
  /** The transport's name, e.g. `kafka`. */
  readonly transport: string;

  constructor(transport: string) {
    super(
      'HERALD_SCHEDULE_UNSUPPORTED',
      `the ${transport} transport cannot schedule messages (capabilities.scheduledPublish is false): ` +
        'publish without delayMs/deliverAt, or use a transport that supports scheduled publish ' +
        '(memory, sqlite, postgres, redis; see docs/events.md)',
    );
    this.transport = transport;
  }
}

/**
 * The delivery time (epoch ms) that `options` ask for, or undefined when they ask for none.
 * Throws ConfigError naming the field for both at once, a negative or non-finite value, or an
 * invalid Date.
 */
export function deliveryTime(options: ScheduleOptions | undefined, now: number): number | undefined {
  if (options === undefined) return undefined;
  const { delayMs, deliverAt } = options;
  if (delayMs === undefined && deliverAt === undefined) return undefined;
  if (delayMs !== undefined && deliverAt !== undefined)
    throw new ConfigError('deliverAt', 'give either delayMs or deliverAt, not both');
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0)
      throw new ConfigError(
        'delayMs',
        `must be a finite number of milliseconds >= 0, got ${String(delayMs)}`,
      );
    return now + delayMs;
  }
  const at = deliverAt instanceof Date ? deliverAt.getTime() : deliverAt;
  if (typeof at !== 'number' || !Number.isFinite(at) || at < 0)
    throw new ConfigError(
      'deliverAt',
      `must be a valid Date or epoch milliseconds >= 0, got ${deliverAt instanceof Date ? 'an invalid Date' : String(deliverAt)}`,
    );
  return at;
}
