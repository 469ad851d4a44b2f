import { setTimeout as sleep } from 'node:timers/promises';
import { createHerald, type Herald } from '../core/herald.js';
import type { EventEnvelope } from '../core/event.js';
import { uuidv7 } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { DeadLetterStore } from '../store/dead-letter-store.js';
import { MemoryDeadLetterStore } from '../store/memory/dead-letter-store.js';
import type { Transport } from '../transport/transport.js';
import { ConversationCreated, DocumentUploaded, MessageSent, RUN_METADATA } from './events.js';
import type { DemoTally } from './status.js';

/** Thrown by the notification service to simulate a flaky downstream (push gateway, mailer). */
export class TransientDeliveryError extends Error {
  override readonly name = 'TransientDeliveryError';
}

/** The audit log's view of ordering: per conversation, sequence numbers must arrive 0 (created), 1, 2, ... */
export class AuditLog {
  readonly written = new Map<string, number>();
  private readonly lastSequence = new Map<string, number>();
  violations = 0;
  /** Redeliveries of something already written (allowed by at-least-once; not a violation). */
  replays = 0;

  constructor(private readonly runId: string) {}

  record(event: EventEnvelope): void {
    if (event.metadata[RUN_METADATA] !== this.runId) return;
    this.written.set(event.type, (this.written.get(event.type) ?? 0) + 1);
    if (event.type === ConversationCreated.type) {
      const id = (event.payload as { conversationId: string }).conversationId;
      if (this.lastSequence.has(id)) this.replays++;
      else this.lastSequence.set(id, 0);
      return;
    }
    if (event.type !== MessageSent.type) return;
    const { conversationId, sequence } = event.payload as { conversationId: string; sequence: number };
    const last = this.lastSequence.get(conversationId);
    if (last === undefined || sequence > last + 1)
      this.violations++; // a message overtook its predecessor
    else if (sequence <= last) this.replays++;
    this.lastSequence.set(conversationId, Math.max(last ?? 0, sequence));
  }
}

export interface DemoServicesOptions {
  readonly runId: string;
  readonly transport: Transport;
  /** Shared by the five services; default: one in-memory store for all of them. */
  readonly deadLetters?: DeadLetterStore;
  readonly tally: DemoTally;
  readonly logger?: Logger;
  /** Share of notification deliveries that fail transiently; default 0.2. */
  readonly notificationFailureRate?: number;
  /** Audit log handling time range in ms; default [5, 20]. */
  readonly auditDelayMs?: readonly [number, number];
}

/** The demo's five services, each its own Herald instance on the shared transport. */
export interface DemoServices {
  readonly conversation: Herald;
  readonly knowledge: Herald;
  readonly consumers: readonly Herald[];
  readonly all: readonly Herald[];
  readonly audit: AuditLog;
  /** analytics-service's counts per event type (this run only). */
  readonly analytics: Map<string, number>;
}

export async function createDemoServices(options: DemoServicesOptions): Promise<DemoServices> {
  const { runId, transport, tally } = options;
  const deadLetters = options.deadLetters ?? new MemoryDeadLetterStore();
  const failureRate = options.notificationFailureRate ?? 0.2;
  const [auditMin, auditMax] = options.auditDelayMs ?? [5, 20];
  const service = (name: string): Promise<Herald> =>
    createHerald({
      service: name,
      transport,
      stores: { deadLetters },
      closeResources: false, // one transport for all five services: closed once by the demo
      drainTimeoutMs: 5000,
      ...(options.logger ? { logger: options.logger } : {}),
    });

  const conversation = await service('conversation-service');
  const knowledge = await service('knowledge-service');

  const analyticsCounts = new Map<string, number>();
  const analytics = await service('analytics-service');
  analytics.subscribe({
    group: 'analytics-service',
    events: [ConversationCreated, MessageSent, DocumentUploaded],
    concurrency: 16,
    ordering: 'none',
    handler: (event) => {
      if (event.metadata[RUN_METADATA] !== runId) return;
      analyticsCounts.set(event.type, (analyticsCounts.get(event.type) ?? 0) + 1);
    },
  });

  const notification = await service('notification-service');
  notification.subscribe({
    group: 'notification-service',
    events: [MessageSent],
    concurrency: 16,
    retry: { maxAttempts: 5, initialDelayMs: 50, multiplier: 2, maxDelayMs: 1000 },
    handler: async () => {
      await sleep(1);
      if (Math.random() < failureRate) throw new TransientDeliveryError('push gateway timed out (simulated)');
    },
  });

  const audit = new AuditLog(runId);
  const auditLog = await service('audit-log');
  auditLog.subscribe({
    group: 'audit-log',
    events: [ConversationCreated, MessageSent, DocumentUploaded],
    concurrency: 8,
    ordering: 'aggregate',
    handler: async (event) => {
      // Check order on arrival, then take the slow path: later events of this conversation wait.
      audit.record(event);
      await sleep(auditMin + Math.random() * (auditMax - auditMin));
    },
  });

  const consumers = [analytics, notification, auditLog];
  for (const h of consumers) {
    h.observe(tally.observer);
    for (const c of h.consumers) tally.addGroup(c.group, c.topics);
  }
  return {
    conversation,
    knowledge,
    consumers,
    all: [conversation, knowledge, ...consumers],
    audit,
    analytics: analyticsCounts,
  };
}

interface OpenConversation {
  readonly id: string;
  readonly userId: string;
  nextSequence: number;
}

/** Every this-many documents one is published malformed on purpose (it ends up in the DLQ). */
const MALFORMED_EVERY = 25;
const TICK_MS = 50;

/**
 * Publishes a realistic mix at a steady rate: ~10% new conversations, ~70% messages in open
 * conversations, ~20% document uploads (every 25th malformed). Publishing is sequential, so the
 * sequence numbers of one conversation are published in order.
 */
export class TrafficGenerator {
  private readonly open: OpenConversation[] = [];
  private documents = 0;
  private sent = 0;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly services: DemoServices,
    private readonly tally: DemoTally,
    private readonly runId: string,
    private readonly rate: number,
    private readonly onError: (err: Error) => void,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops publishing; resolves when the last batch has been sent. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    const started = performance.now();
    while (this.running) {
      const due = Math.floor(((performance.now() - started) / 1000) * this.rate) - this.sent;
      // After a stall, catch up by at most one second's worth rather than flooding.
      const n = Math.min(due, Math.max(1, Math.ceil(this.rate)));
      if (n > 0) {
        this.sent += due; // skip what could not be caught up
        try {
          await this.publish(n);
        } catch (err) {
          this.onError(err as Error);
        }
      }
      await sleep(TICK_MS);
    }
  }

  private async publish(n: number): Promise<void> {
    const chat: Parameters<Herald['publishBatch']>[0][number][] = [];
    const docs: typeof chat = [];
    const metadata = { [RUN_METADATA]: this.runId };
    for (let i = 0; i < n; i++) {
      const roll = Math.random();
      if (roll < 0.1 || this.open.length < 10) {
        const c: OpenConversation = {
          id: `conv-${uuidv7().slice(-12)}`,
          userId: `user-${Math.floor(Math.random() * 500)}`,
          nextSequence: 1,
        };
        if (this.open.length >= 50) this.open.splice(Math.floor(Math.random() * this.open.length), 1);
        this.open.push(c);
        chat.push({
          event: ConversationCreated,
          payload: { conversationId: c.id, userId: c.userId, title: `Question #${this.sent + i}` },
          options: { id: uuidv7(), aggregateId: c.id, userId: c.userId, tenantId: 'acme', metadata },
        });
      } else if (roll < 0.8) {
        const c = this.open[Math.floor(Math.random() * this.open.length)]!;
        const sequence = c.nextSequence++;
        chat.push({
          event: MessageSent,
          payload: {
            conversationId: c.id,
            messageId: `msg-${uuidv7().slice(-12)}`,
            sequence,
            role: sequence % 2 === 1 ? 'user' : 'assistant',
            text:
              sequence % 2 === 1
                ? 'How do I rotate my API key?'
                : 'Open Settings → API keys and click Rotate.',
          },
          options: { id: uuidv7(), aggregateId: c.id, userId: c.userId, tenantId: 'acme', metadata },
        });
      } else {
        this.documents++;
        const documentId = `doc-${uuidv7().slice(-12)}`;
        const options = { id: uuidv7(), aggregateId: documentId, tenantId: 'acme', metadata };
        if (this.documents % MALFORMED_EVERY === 0) {
          // A bare type string skips producer-side validation: the consumers' schemas catch it.
          docs.push({
            event: DocumentUploaded.type,
            payload: { documentId, name: '', sizeBytes: 'a lot', mimeType: 42 },
            options,
          });
        } else {
          docs.push({
            event: DocumentUploaded,
            payload: {
              documentId,
              name: `handbook-${this.documents}.pdf`,
              sizeBytes: 10_000 + Math.floor(Math.random() * 5_000_000),
              mimeType: 'application/pdf',
            },
            options,
          });
        }
      }
    }
    await Promise.all([
      this.send(this.services.conversation, chat),
      this.send(this.services.knowledge, docs),
    ]);
  }

  private async send(herald: Herald, items: Parameters<Herald['publishBatch']>[0][number][]): Promise<void> {
    if (items.length === 0) return;
    const routed = items.map((item) => {
      const type = typeof item.event === 'string' ? item.event : item.event.type;
      return { id: item.options!.id!, type, topic: herald.bus.router.topicFor(type) };
    });
    for (const r of routed) this.tally.expect(r.id, r.topic);
    try {
      await herald.publishBatch(items);
    } catch (err) {
      this.tally.abandoned(routed.map((r) => r.id));
      throw err;
    }
    this.tally.confirmPublished(routed);
  }
}
