/**
 * The demo's order saga: reserve stock (in process), charge the payment (a command to
 * payment-service over the bus, answered by a reply event), ship (in process, the pivot). The
 * payment is declined for some orders, and the saga then releases the stock it reserved.
 */
import { createHerald, type Herald } from '../core/herald.js';
import type { DeadLetterStore } from '../store/dead-letter-store.js';
import type { Transport } from '../transport/transport.js';
import { defineSaga } from '../saga/definition.js';
import { SagaRunner } from '../saga/runner.js';
import type { SagaStore } from '../saga/store.js';

export const ChargeRequested = 'payment.charge.requested';
export const PaymentCharged = 'payment.charge.succeeded';
export const PaymentDeclined = 'payment.charge.declined';

/** What the demo summary shows about the order sagas of the run. */
export interface OrderSagaSummary {
  readonly started: number;
  readonly completed: number;
  readonly compensated: number;
  /** Parked for an operator (failed after the pivot, or a compensation that kept failing). Expected 0. */
  readonly parked: number;
  /** Still running when the demo stopped. */
  readonly inFlight: number;
  readonly paymentsDeclined: number;
  /** Stock units reserved and not released or shipped: must be 0 once every saga finished. */
  readonly stockLeaked: number;
  readonly repliesIgnored: number;
}

interface OrderInput {
  readonly orderId: string;
  readonly sku: string;
  readonly amount: number;
}

export interface OrderSagas {
  summary(): OrderSagaSummary;
  /** Stops starting orders and waits (bounded) for the running ones. */
  stop(settleTimeoutMs: number): Promise<void>;
}

/** Starts payment-service, the order saga runner and an order every `everyMs` (default 250). */
export async function startOrderSagas(options: {
  readonly runId: string;
  readonly transport: Transport;
  readonly deadLetters?: DeadLetterStore;
  readonly store: SagaStore;
  /** Share of payments declined; default 0.15. */
  readonly declineRate?: number;
  readonly everyMs?: number;
}): Promise<OrderSagas> {
  const declineRate = options.declineRate ?? 0.15;
  const reserved = new Map<string, number>(); // orderId -> units held
  let declined = 0;
  const service = (name: string): Promise<Herald> =>
    createHerald({
      service: name,
      transport: options.transport,
      ...(options.deadLetters ? { stores: { deadLetters: options.deadLetters } } : {}),
      closeResources: false,
      drainTimeoutMs: 2000,
    });

  const payments = await service('payment-service');
  payments.subscribe({
    group: 'payment-service',
    events: [ChargeRequested],
    handler: async (command) => {
      const { orderId, amount } = command.payload as { orderId: string; amount: number };
      const ok = Math.random() >= declineRate;
      if (!ok) declined++;
      await payments.publish(
        ok ? PaymentCharged : PaymentDeclined,
        ok
          ? { orderId, chargeId: `ch-${orderId}`, amount }
          : { orderId, reason: 'card declined (simulated)' },
        {
          correlationId: command.correlationId!,
          causationId: command.id,
        },
      );
    },
  });

  const orders = await service('order-service');
  const saga = defineSaga<OrderInput>('order', { timeoutMs: 30_000 })
    .step('reserve-stock', {
      run: (ctx) => {
        reserved.set(ctx.input.orderId, 1);
        return { sku: ctx.input.sku, units: 1 };
      },
      compensate: (ctx) => void reserved.delete(ctx.input.orderId),
    })
    .step('charge-payment', {
      command: {
        event: ChargeRequested,
        payload: (ctx) => ({ orderId: ctx.input.orderId, amount: ctx.input.amount }),
      },
      reply: { success: PaymentCharged, failure: PaymentDeclined },
      timeoutMs: 10_000,
      compensate: async (ctx) => {
        // A refund would be another command; the demo's payments are declined, never half-done.
        void ctx;
      },
    })
    .step('ship', {
      pivot: true,
      run: (ctx) => {
        reserved.delete(ctx.input.orderId); // the reserved unit leaves the warehouse
        return { trackingId: `trk-${ctx.input.orderId}` };
      },
    });
  const counts = { started: 0, completed: 0, compensated: 0, parked: 0 };
  const runner = new SagaRunner({
    store: options.store,
    sagas: [saga],
    bus: orders,
    pollIntervalMs: 200,
    observers: [
      {
        onSagaStarted: () => void counts.started++,
        onSagaFinished: ({ status }) => {
          if (status === 'completed') counts.completed++;
          else if (status === 'compensated') counts.compensated++;
          else counts.parked++;
        },
      },
    ],
  });
  runner.listen(orders, { group: `order-saga-${options.runId}` });
  await Promise.all([payments.start(), orders.start()]);
  runner.start();

  let n = 0;
  const timer = setInterval(() => {
    const orderId = `order-${options.runId}-${++n}`;
    void runner
      .begin(saga, { orderId, sku: `sku-${n % 7}`, amount: 10 + (n % 90) }, { id: orderId })
      .catch(() => undefined);
  }, options.everyMs ?? 250);

  return {
    summary: () => ({
      ...counts,
      inFlight: counts.started - counts.completed - counts.compensated - counts.parked,
      paymentsDeclined: declined,
      stockLeaked: [...reserved.values()].reduce((a, b) => a + b, 0),
      repliesIgnored: Object.values(runner.ignoredReplies).reduce((a, b) => a + b, 0),
    }),
    async stop(settleTimeoutMs) {
      clearInterval(timer);
      const deadline = Date.now() + settleTimeoutMs;
      while (
        counts.started > counts.completed + counts.compensated + counts.parked &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await runner.stop();
      await Promise.all([orders.stop(), payments.stop()]);
      await options.store.close();
    },
  };
}
