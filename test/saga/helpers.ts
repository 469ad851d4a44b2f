import type { EventEnvelope, EventOptions } from '../../src/core/event.js';
import type { SagaBus } from '../../src/saga/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export interface SentCommand {
  readonly type: string;
  readonly payload: unknown;
  readonly options: EventOptions;
}

/** A bus that records what the runner publishes; replies are built with {@link reply}. */
export class RecordingBus implements SagaBus {
  readonly sent: SentCommand[] = [];
  failNext = 0;

  async publish<P>(
    event: string | { type: string },
    payload: P,
    options: EventOptions = {},
  ): Promise<unknown> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('broker unreachable (simulated)');
    }
    this.sent.push({ type: typeof event === 'string' ? event : event.type, payload, options });
    return undefined;
  }

  /** Commands of one type, in order. */
  of(type: string): SentCommand[] {
    return this.sent.filter((c) => c.type === type);
  }
}

let replies = 0;
/** A reply envelope as a replying service would publish it: correlation id and causation id copied from the command. */
export function reply(command: SentCommand, type: string, payload: unknown = {}): EventEnvelope {
  return {
    id: `reply-${++replies}`,
    type,
    version: 'v1',
    source: 'test-service',
    time: new Date().toISOString(),
    payload,
    metadata: {},
    correlationId: command.options.correlationId!,
    causationId: command.options.id!,
  };
}
