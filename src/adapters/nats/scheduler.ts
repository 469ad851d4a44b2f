import {
  AckPolicy,
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { Message } from '../../transport/transport.js';
import { decodeMessage, encodeHeaders, msgId } from './codec.js';
import type { Connection } from './connection.js';
import type { ResolvedTransportOptions } from './options.js';
import { isNotFound, type Broker, type Handles } from './state.js';

/*
 * Scheduled publish on JetStream 2.9 (no native message schedules before 2.12), ADR 0904:
 *
 * - A scheduled message is stored in `<ns>-scheduled` on `<ns>.sched.<topic>.<id>` (one message
 *   per subject) with its topic and due time in headers.
 * - One durable pull consumer, `scheduler`, shared by every transport of the namespace, reads it.
 *   A message not yet due is `nak`ed with the remaining time: the server keeps the timer, durably.
 * - When due, the scheduler claims the message by publishing a `moving` copy on its subject with
 *   "expected last subject sequence" = the message's sequence; a cancel claims it the same way with
 *   a `cancelled` marker. Exactly one claim succeeds, so a cancel's count is exact.
 * - A `moving` copy is published to the topic (Nats-Msg-Id as a normal publish, so a move repeated
 *   after a crash is dropped by the duplicate window) and then deleted. A scheduler that finds a
 *   `moving` copy (its claimant crashed) finishes the move; one that finds a `cancelled` marker
 *   deletes it.
 */

const TOPIC_HEADER = 'Herald-Topic';
const DUE_HEADER = 'Herald-Deliver-At';
const STATE_HEADER = 'Herald-Sched';
/** Pulled per request: the scheduler only nak()s or moves, so it never holds many at once. */
const BATCH = 64;
/** AckWait of the shared scheduler consumer (see where it is created). */
const SCHEDULER_ACK_WAIT_MS = 1_000;

type State = 'moving' | 'cancelled';

interface Scheduled {
  readonly topic: string;
  readonly due: number;
  readonly state: State | undefined;
  readonly message: Message;
}

/** What the scheduler needs from its transport. */
export interface SchedulerContext {
  readonly broker: Broker;
  readonly connection: Connection;
  readonly options: ResolvedTransportOptions;
}

/** Publishes, cancels and moves the scheduled messages of one namespace. */
export class Scheduler {
  private started: Promise<void> | undefined;
  private active = true;
  private fetch: ConsumerMessages | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private h!: Handles;
  private consumer!: Consumer;

  constructor(private readonly ctx: SchedulerContext) {}

  private get stream(): string {
    return this.ctx.broker.names.scheduledStream;
  }

  /** Creates the stream and the shared consumer and starts pulling; once per transport. */
  start(): Promise<void> {
    this.started ??= this.open().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  /** Stores the messages until `deliverAt`; resolves once JetStream acknowledged every one. */
  async publish(topic: string, messages: readonly Message[], deliverAt: number): Promise<void> {
    await this.start();
    const names = this.ctx.broker.names;
    await Promise.all(
      messages.map((m) =>
        this.h.js.publish(names.scheduledSubject(topic, m.id), m.body, {
          headers: scheduledHeaders(m, topic, deliverAt),
          // A publisher's retry is dropped; a cancelled id scheduled again within the window too.
          msgID: msgId(topic, m),
        }),
      ),
    );
  }

  /** Cancels by id; counts the messages whose cancel won the claim (ADR 0904). */
  async cancel(topic: string, ids: readonly string[]): Promise<number> {
    await this.start();
    const results = await Promise.all(ids.map((id) => this.cancelOne(topic, id)));
    return results.reduce((a, b) => a + b, 0);
  }

  /** Scheduled messages of a topic still in the stream (not yet moved or cancelled). */
  async count(topic: string): Promise<number> {
    const { jsm } = await this.ctx.broker.handles();
    const filter = `${this.ctx.broker.names.scheduledTopicSubject(topic)}.>`;
    const info = await jsm.streams.info(this.stream, { subjects_filter: filter }).catch((err: unknown) => {
      if (isNotFound(err)) return undefined; // nothing was ever scheduled in this namespace
      throw err;
    });
    return Object.values(info?.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  }

  /** Stops pulling; a message being moved is finished first, the rest go back to the stream. */
  async close(): Promise<void> {
    this.active = false;
    this.fetch?.stop();
    await this.loopDone;
  }

  private async open(): Promise<void> {
    this.h = await this.ctx.broker.scheduled();
    const { jsm, js } = this.h;
    const durable = 'scheduler';
    const exists = await jsm.consumers.info(this.stream, durable).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!exists) {
      await jsm.consumers
        .add(this.stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          // The scheduler holds a delivery only for a nak() or a claim, milliseconds. A short AckWait
          // bounds how late a message comes when it was pulled by a scheduler closing at that moment
          // (a stopped pull drops what it had buffered): 1 s, not the members' lease of 30 s.
          ack_wait: Math.min(this.ctx.options.ackWaitMs, SCHEDULER_ACK_WAIT_MS) * 1_000_000,
          // A message waits for its due time by being nak()ed: never give up on one, and never
          // let thousands of waiting messages stall the consumer.
          max_deliver: -1,
          max_ack_pending: -1,
        })
        .catch(async (err: unknown) => {
          // Another transport created it at the same moment.
          if (!(await jsm.consumers.info(this.stream, durable).catch(() => undefined))) throw err;
        });
    }
    this.consumer = await js.consumers.get(this.stream, durable);
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    let errors = 0;
    while (this.active) {
      try {
        const iter = await this.consumer.fetch({
          max_messages: BATCH,
          expires: this.ctx.options.pullExpiresMs,
        });
        this.fetch = iter;
        if (!this.active) iter.stop();
        for await (const msg of iter) {
          if (this.active) await this.handle(msg);
          else msg.nak(); // pulled while closing: back to the stream for another scheduler
        }
        errors = 0;
      } catch (err) {
        if (!this.active) break;
        errors++;
        this.ctx.connection.report(err, 'scheduler pull');
        if (isNotFound(err)) {
          this.started = undefined;
          await this.open().catch(() => undefined);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** Math.min(errors, 6), 2000)));
      } finally {
        this.fetch = undefined;
      }
    }
    await this.h.nc.flush().catch(() => undefined);
  }

  private async handle(msg: JsMsg): Promise<void> {
    const s = decodeScheduled(msg.headers, msg.data, this.stream, msg.seq);
    try {
      if (!s) {
        // Not written by Herald: nothing to move it to.
        this.ctx.connection.report(new Error(`not a scheduled message on ${msg.subject}`), 'scheduler');
        await this.remove(msg.seq);
        msg.ack();
        return;
      }
      if (s.state === 'cancelled') {
        await this.remove(msg.seq);
        msg.ack();
        return;
      }
      if (s.state === undefined) {
        const wait = s.due - Date.now();
        if (wait > 0) {
          msg.nak(wait); // the server redelivers at the due time
          return;
        }
        const claimed = await this.claim(msg.subject, msg.seq, s, 'moving');
        msg.ack(); // replaced by the claim (or by a cancel): nothing left to redeliver
        if (claimed === undefined) return;
        await this.move(s, claimed);
        return;
      }
      msg.working(); // a move can outlast the short AckWait; the claim makes a repeat harmless anyway
      await this.move(s, msg.seq); // a claimant crashed mid-move: finish it
      msg.ack();
    } catch (err) {
      // Left unacknowledged: redelivered after AckWait, nothing lost.
      this.ctx.connection.report(err, `scheduler on ${msg.subject}`);
    }
  }

  /** Publishes a claimed message to its topic, then deletes the claim. */
  private async move(s: Scheduled, claimSeq: number): Promise<void> {
    const names = this.ctx.broker.names;
    await this.h.js.publish(names.messageSubject(s.topic, s.message.key), s.message.body, {
      headers: encodeHeaders(s.message),
      msgID: msgId(s.topic, s.message),
    });
    await this.remove(claimSeq);
  }

  private async cancelOne(topic: string, id: string): Promise<number> {
    const subject = this.ctx.broker.names.scheduledSubject(topic, id);
    for (let i = 0; i < 5; i++) {
      const last = await this.h.jsm.streams
        .getMessage(this.stream, { last_by_subj: subject })
        .catch((err: unknown) => {
          if (isNotFound(err)) return null;
          throw err;
        });
      if (!last) return 0;
      const s = decodeScheduled(last.header, last.data, this.stream, last.seq);
      if (!s || s.state !== undefined) return 0; // being moved, or cancelled already
      const claimed = await this.claim(subject, last.seq, s, 'cancelled');
      if (claimed !== undefined) {
        await this.remove(claimed).catch(() => undefined); // else the scheduler deletes it
        return 1;
      }
      // Lost the claim to a move, or the id was scheduled again: look at the subject again.
    }
    return 0;
  }

  /**
   * Replaces message `seq` of `subject` by a copy in `state`, only if it is still the subject's
   * last message. Resolves with the copy's sequence, or undefined if another claim came first.
   */
  private async claim(subject: string, seq: number, s: Scheduled, state: State): Promise<number | undefined> {
    const headers = scheduledHeaders(s.message, s.topic, s.due);
    headers.set(STATE_HEADER, state);
    try {
      const ack = await this.h.js.publish(subject, state === 'moving' ? s.message.body : new Uint8Array(0), {
        headers,
        expect: { lastSubjectSequence: seq },
      });
      return ack.seq;
    } catch (err) {
      if (/wrong last sequence|10071/i.test(String((err as Error)?.message ?? err))) return undefined;
      throw err;
    }
  }

  private async remove(seq: number): Promise<void> {
    await this.h.jsm.streams.deleteMessage(this.stream, seq, false).catch((err: unknown) => {
      if (!/not found|10057|no message/i.test(String((err as Error)?.message ?? err))) throw err;
    });
  }
}

function scheduledHeaders(m: Message, topic: string, deliverAt: number): MsgHdrs {
  const h = encodeHeaders(m);
  h.set(TOPIC_HEADER, encodeURIComponent(topic));
  h.set(DUE_HEADER, String(deliverAt));
  return h;
}

function decodeScheduled(
  hdrs: MsgHdrs | undefined,
  body: Uint8Array,
  stream: string,
  seq: number,
): Scheduled | undefined {
  const topic = hdrs?.get(TOPIC_HEADER);
  const due = Number(hdrs?.get(DUE_HEADER));
  if (!topic || !Number.isFinite(due)) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(topic);
  } catch {
    return undefined;
  }
  const state = hdrs?.get(STATE_HEADER);
  return {
    topic: name,
    due,
    state: state === 'moving' || state === 'cancelled' ? state : undefined,
    message: decodeMessage(hdrs, body, stream, seq),
  };
}
