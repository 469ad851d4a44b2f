import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  defineSaga,
  MemorySagaStore,
  SagaOperations,
  SagaRunner,
  SagaStateError,
  type MemorySagaTx,
  type SagaObserver,
  type SagaRecord,
} from '../../src/saga/index.js';
import { RecordingBus, reply, sleep, until } from './helpers.js';

type Input = { orderId: string; failAt?: string };

/** Three local steps that log what they do, failing where the input says. */
function threeSteps(log: string[], options: { compensateFails?: number } = {}) {
  let compensationFailures = options.compensateFails ?? 0;
  const step = (name: string) => ({
    run: async (ctx: { input: Input; results: object }) => {
      log.push(`run:${name}`);
      if (ctx.input.failAt === name) throw new Error(`${name} failed`);
      return { [name]: ctx.input.orderId, seen: Object.keys(ctx.results) };
    },
    compensate: async () => {
      if (compensationFailures > 0) {
        compensationFailures--;
        throw new Error(`undo ${name} failed`);
      }
      log.push(`undo:${name}`);
    },
    compensationRetry: { maxRetries: 2, initialDelayMs: 1, jitter: 'none' as const },
  });
  return defineSaga<Input>('three').step('a', step('a')).step('b', step('b')).step('c', step('c'));
}

function runner(
  saga: Parameters<typeof sagaRunner>[0],
  extra: Partial<ConstructorParameters<typeof SagaRunner>[0]> = {},
) {
  return sagaRunner(saga, extra);
}

function sagaRunner(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  saga: any,
  extra: Partial<ConstructorParameters<typeof SagaRunner>[0]> = {},
): SagaRunner<MemorySagaTx> {
  return new SagaRunner<MemorySagaTx>({
    store: new MemorySagaStore(),
    sagas: [saga],
    pollIntervalMs: 10,
    leaseMs: 2000,
    onError: () => undefined,
    ...extra,
  } as ConstructorParameters<typeof SagaRunner<MemorySagaTx>>[0]);
}

const statuses = (r: SagaRecord): string[] => r.steps.map((s) => `${s.name}:${s.status}`);

describe('local steps', () => {
  test('all steps complete in order; later steps see earlier results', async () => {
    const log: string[] = [];
    const r = runner(threeSteps(log));
    r.start();
    const id = await r.begin('three', { orderId: 'o1' });
    const done = await r.wait(id);
    await r.stop();
    assert.equal(done.status, 'completed');
    assert.deepEqual(log, ['run:a', 'run:b', 'run:c']);
    assert.deepEqual(done.steps[2]!.result, { c: 'o1', seen: ['a', 'b'] });
    assert.deepEqual(statuses(done), ['a:done', 'b:done', 'c:done']);
    assert.deepEqual(
      done.timeline.map((e) => e.event),
      [
        'saga.started',
        'step.started',
        'step.completed',
        'step.started',
        'step.completed',
        'step.started',
        'step.completed',
        'saga.completed',
      ],
    );
    assert.equal(done.lease, undefined, 'the lease is released at the end');
  });

  for (const [failAt, undone] of [
    ['a', []],
    ['b', ['undo:a']],
    ['c', ['undo:b', 'undo:a']],
  ] as const) {
    test(`a failure in step ${failAt} compensates the completed steps in reverse`, async () => {
      const log: string[] = [];
      const r = runner(threeSteps(log));
      r.start();
      const done = await r.wait(await r.begin('three', { orderId: 'o', failAt }));
      await r.stop();
      assert.equal(done.status, 'compensated');
      assert.deepEqual(
        log.filter((l) => l.startsWith('undo')),
        [...undone],
      );
      assert.equal(done.error?.step, failAt);
      assert.equal(done.error?.message, `${failAt} failed`);
      assert.equal(done.steps.find((s) => s.name === failAt)!.status, 'failed');
    });
  }

  test('begin with an existing id starts nothing new', async () => {
    const log: string[] = [];
    const r = runner(threeSteps(log));
    r.start();
    const id = await r.begin('three', { orderId: 'o' }, { id: 'order-1' });
    assert.equal(await r.begin('three', { orderId: 'other' }, { id: 'order-1' }), id);
    await r.wait(id);
    await sleep(30);
    await r.stop();
    assert.deepEqual(log, ['run:a', 'run:b', 'run:c']);
  });

  test('a step retry policy (from herald/resilience) retries the action before giving up', async () => {
    let calls = 0;
    const saga = defineSaga<null>('retrying').step('flaky', {
      run: () => {
        if (++calls < 3) throw new Error('transient');
        return 'ok';
      },
      retry: { maxRetries: 3, initialDelayMs: 1, jitter: 'none' },
    });
    const r = runner(saga);
    r.start();
    const done = await r.wait(await r.begin(saga, null));
    await r.stop();
    assert.equal(done.status, 'completed');
    assert.equal(calls, 3);
  });

  test('a step timeout aborts ctx.signal and fails the step', async () => {
    const undone: string[] = [];
    const saga = defineSaga<null>('slow')
      .step('first', { run: () => 1, compensate: () => void undone.push('first') })
      .step('hang', {
        timeoutMs: 40,
        run: (ctx) =>
          new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      });
    const r = runner(saga);
    r.start();
    const done = await r.wait(await r.begin(saga, null));
    await r.stop();
    assert.equal(done.status, 'compensated');
    assert.match(done.error!.message, /40 ms|timed out|timeout/i);
    assert.deepEqual(undone, ['first']);
  });

  test('a failing compensation is retried and the saga still ends compensated', async () => {
    const log: string[] = [];
    const r = runner(threeSteps(log, { compensateFails: 2 }));
    r.start();
    const done = await r.wait(await r.begin('three', { orderId: 'o', failAt: 'c' }));
    await r.stop();
    assert.equal(done.status, 'compensated');
    assert.deepEqual(
      log.filter((l) => l.startsWith('undo')),
      ['undo:b', 'undo:a'],
    );
  });

  test('a compensation that keeps failing parks the saga; an operator retries or aborts it', async () => {
    const log: string[] = [];
    const r = runner(threeSteps(log, { compensateFails: 3 }));
    const ops = new SagaOperations(r.store);
    r.start();
    const id = await r.begin('three', { orderId: 'o', failAt: 'c' });
    const parked = await r.wait(id);
    assert.equal(parked.status, 'compensation-failed');
    assert.equal(parked.error?.step, 'b');
    assert.match(parked.error!.message, /undo b failed/);
    assert.deepEqual(statuses(parked), ['a:done', 'b:compensation-failed', 'c:failed']);
    await assert.rejects(ops.retry('missing'), /no saga/);
    await ops.retry(id); // the compensation works now
    await until(async () => (await r.store.get(id))!.status === 'compensated', 'compensated after retry');
    assert.deepEqual(
      log.filter((l) => l.startsWith('undo')),
      ['undo:b', 'undo:a'],
    );
    const after = (await ops.inspect(id)).timeline.map((e) => e.event);
    assert.ok(after.includes('operator.retry'));
    await assert.rejects(ops.retry(id), SagaStateError);
    await assert.rejects(ops.abort(id), SagaStateError);

    await r.stop();
  });

  test('abort closes a parked saga', async () => {
    const log: string[] = [];
    const r = runner(threeSteps(log, { compensateFails: 99 }));
    const ops = new SagaOperations(r.store);
    r.start();
    const id = await r.begin('three', { orderId: 'o', failAt: 'b' });
    assert.equal((await r.wait(id)).status, 'compensation-failed');
    const aborted = await ops.abort(id, 'refunded by hand');
    assert.equal(aborted.status, 'aborted');
    assert.equal((await r.store.get(id))!.wakeAt, null);
    await r.stop();
  });

  test('after the pivot a failure parks the saga as failed; retry runs the step again; abort is refused', async () => {
    let shipFailures = 2;
    const undone: string[] = [];
    const saga = defineSaga<null>('pivoting')
      .step('reserve', { run: () => 'r', compensate: () => void undone.push('reserve') })
      .step('charge', { run: () => 'c', compensate: () => void undone.push('charge'), pivot: true })
      .step('ship', {
        run: () => {
          if (shipFailures-- > 0) throw new Error('carrier down');
          return 'shipped';
        },
      });
    const r = runner(saga);
    const ops = new SagaOperations(r.store);
    r.start();
    const id = await r.begin(saga, null);
    const parked = await r.wait(id);
    assert.equal(parked.status, 'failed');
    assert.equal(parked.pivotPassed, true);
    assert.deepEqual(undone, [], 'nothing is compensated after the pivot');
    await ops.retry(id);
    await until(async () => (await r.store.get(id))!.steps[2]!.attempts === 2, 'second attempt');
    assert.equal((await r.wait(id)).status, 'failed', 'fails again (second failure)');
    await ops.retry(id);
    await until(
      async () => (await r.store.get(id))!.status === 'completed',
      'completed on the third attempt',
    );
    assert.deepEqual(undone, []);
    await r.stop();
  });

  test('abort is refused for a running saga past its pivot', async () => {
    const bus = new RecordingBus();
    const saga = defineSaga<null>('past-pivot')
      .step('charge', { run: () => 'c', pivot: true })
      .step('ship', {
        command: { event: 'shipping.parcel.requested', payload: () => ({}) },
        reply: { success: 'shipping.parcel.sent' },
      });
    const r = runner(saga, { bus });
    const ops = new SagaOperations(r.store);
    r.start();
    const id = await r.begin(saga, null);
    await until(() => bus.sent.length === 1, 'command sent');
    await until(async () => (await r.store.get(id))!.lease === undefined, 'waiting without a lease');
    await assert.rejects(ops.abort(id), /past its pivot/);
    await r.handleReply(reply(bus.sent[0]!, 'shipping.parcel.sent'));
    assert.equal((await r.wait(id)).status, 'completed');
    await r.stop();
  });

  test('abort of a running saga before its pivot compensates; after the pivot it is refused', async () => {
    const bus = new RecordingBus();
    const undone: string[] = [];
    const saga = defineSaga<null>('abortable')
      .step('reserve', { run: () => 'r', compensate: () => void undone.push('reserve') })
      .step('charge', {
        command: { event: 'payment.charge.requested', payload: () => ({}) },
        reply: { success: 'payment.charge.succeeded' },
        compensate: () => void undone.push('charge'),
      });
    const r = runner(saga, { bus });
    const ops = new SagaOperations(r.store);
    r.start();
    const id = await r.begin(saga, null);
    await until(() => bus.sent.length === 1, 'command sent');
    await until(async () => (await r.store.get(id))!.lease === undefined, 'lease released while waiting');
    await ops.abort(id);
    const done = await r.wait(id);
    assert.equal(done.status, 'compensated');
    assert.deepEqual(undone, ['charge', 'reserve'], 'the command awaiting its reply is compensated too');
    assert.equal(await r.handleReply(reply(bus.sent[0]!, 'payment.charge.succeeded')), 'late');
    await r.stop();
  });
});

describe('command steps (orchestration)', () => {
  const chargeSaga = (options: { retry?: boolean; timeoutMs?: number; sagaTimeoutMs?: number } = {}) => {
    const undone: string[] = [];
    const saga = defineSaga<{ amount: number }>(
      'charge',
      options.sagaTimeoutMs ? { timeoutMs: options.sagaTimeoutMs } : {},
    )
      .step('reserve', { run: () => 'stock-1', compensate: () => void undone.push('reserve') })
      .step('charge', {
        command: { event: 'payment.charge.requested', payload: (ctx) => ({ amount: ctx.input.amount }) },
        reply: {
          success: 'payment.charge.succeeded',
          failure: 'payment.charge.declined',
          result: (e) => (e.payload as { chargeId: string }).chargeId,
        },
        timeoutMs: options.timeoutMs ?? 5000,
        compensate: (ctx) => void undone.push(`charge:${String(ctx.result)}`),
        ...(options.retry ? { retry: { maxRetries: 1, initialDelayMs: 1, jitter: 'none' as const } } : {}),
      })
      .step('ship', { run: (ctx) => `ship-${String(ctx.results.charge)}` });
    return { saga, undone };
  };

  test('a success reply completes the step; the command carries correlation and idempotency ids', async () => {
    const bus = new RecordingBus();
    const { saga } = chargeSaga();
    const r = runner(saga, { bus });
    r.start();
    const id = await r.begin(saga, { amount: 42 });
    await until(() => bus.sent.length === 1, 'command sent');
    const cmd = bus.sent[0]!;
    assert.deepEqual(cmd.payload, { amount: 42 });
    assert.equal(cmd.options.correlationId, id);
    assert.equal(cmd.options.id, `${id}:charge:1`);
    assert.equal(cmd.options.metadata!['idempotency-key'], `${id}/charge/run`);
    assert.equal(
      await r.handleReply(reply(cmd, 'payment.charge.succeeded', { chargeId: 'ch-9' })),
      'applied',
    );
    const done = await r.wait(id);
    assert.equal(done.status, 'completed');
    assert.equal(done.steps[2]!.result, 'ship-ch-9');
    await r.stop();
  });

  test('a failure reply compensates the completed steps (not the rejected one)', async () => {
    const bus = new RecordingBus();
    const { saga, undone } = chargeSaga();
    const r = runner(saga, { bus });
    r.start();
    const id = await r.begin(saga, { amount: 1 });
    await until(() => bus.sent.length === 1, 'command sent');
    await r.handleReply(reply(bus.sent[0]!, 'payment.charge.declined', { reason: 'card expired' }));
    const done = await r.wait(id);
    assert.equal(done.status, 'compensated');
    assert.deepEqual(undone, ['reserve']);
    assert.match(done.error!.message, /card expired/);
    await r.stop();
  });

  test('duplicate, stale, uncorrelated, unknown and late replies are ignored and counted', async () => {
    const bus = new RecordingBus();
    const { saga } = chargeSaga({ retry: true });
    const ignored: string[] = [];
    const r = runner(saga, { bus, observers: [{ onReplyIgnored: (i) => void ignored.push(i.reason) }] });
    r.start();
    const id = await r.begin(saga, { amount: 1 });
    await until(() => bus.sent.length === 1, 'first command');
    const first = bus.sent[0]!;
    assert.equal(await r.handleReply(reply(first, 'payment.charge.declined')), 'applied');
    await until(() => bus.sent.length === 2, 'command re-sent after the failure reply');
    const second = bus.sent[1]!;
    assert.equal(second.options.id, `${id}:charge:2`);
    // A second copy of the first attempt's reply: its causation id names an old command.
    assert.equal(await r.handleReply(reply(first, 'payment.charge.declined')), 'duplicate');
    const ok = reply(second, 'payment.charge.succeeded', { chargeId: 'c2' });
    assert.equal(await r.handleReply(ok), 'applied');
    await r.wait(id);
    assert.equal(await r.handleReply(ok), 'late');
    assert.equal(await r.handleReply({ ...ok, correlationId: undefined }), 'uncorrelated');
    assert.equal(await r.handleReply({ ...ok, correlationId: 'nope' }), 'unknown');
    assert.deepEqual(r.ignoredReplies, { uncorrelated: 1, unknown: 1, duplicate: 1, late: 1 });
    assert.deepEqual(ignored.sort(), ['duplicate', 'late', 'uncorrelated', 'unknown']);
    assert.equal((await r.store.get(id))!.status, 'completed');
    await r.stop();
  });

  test('no reply within the step timeout compensates, including the step whose outcome is unknown', async () => {
    const bus = new RecordingBus();
    const { saga, undone } = chargeSaga({ timeoutMs: 60 });
    const r = runner(saga, { bus });
    r.start();
    const done = await r.wait(await r.begin(saga, { amount: 1 }));
    assert.equal(done.status, 'compensated');
    assert.equal(done.error?.code, 'HERALD_SAGA_REPLY_TIMEOUT');
    assert.deepEqual(undone, ['charge:undefined', 'reserve']);
    await r.stop();
  });

  test('the saga timeout compensates a saga that waits too long', async () => {
    const bus = new RecordingBus();
    const { saga, undone } = chargeSaga({ sagaTimeoutMs: 80, timeoutMs: 60_000 });
    const r = runner(saga, { bus });
    r.start();
    const done = await r.wait(await r.begin(saga, { amount: 1 }));
    assert.equal(done.status, 'compensated');
    assert.equal(done.error?.code, 'HERALD_SAGA_TIMEOUT');
    assert.deepEqual(undone, ['charge:undefined', 'reserve']);
    await r.stop();
  });

  test('a publish failure is retried later with the same command id', async () => {
    const bus = new RecordingBus();
    bus.failNext = 1;
    const { saga } = chargeSaga();
    const r = runner(saga, { bus, pollIntervalMs: 5 });
    r.start();
    const id = await r.begin(saga, { amount: 1 });
    await until(() => bus.sent.length === 1, 'command sent after the broker came back');
    assert.equal(bus.sent[0]!.options.id, `${id}:charge:1`);
    await r.handleReply(reply(bus.sent[0]!, 'payment.charge.succeeded', { chargeId: 'x' }));
    assert.equal((await r.wait(id)).status, 'completed');
    await r.stop();
  });
});

describe('concurrency and crashes', () => {
  test('two runners on one store: every step runs once per saga', async () => {
    const store = new MemorySagaStore();
    const runs = new Map<string, number>();
    const saga = defineSaga<number>('shared')
      .step('one', {
        run: async (ctx) => void runs.set(`${ctx.sagaId}/one`, (runs.get(`${ctx.sagaId}/one`) ?? 0) + 1),
      })
      .step('two', {
        run: async (ctx) => {
          await sleep(Math.random() * 3);
          runs.set(`${ctx.sagaId}/two`, (runs.get(`${ctx.sagaId}/two`) ?? 0) + 1);
        },
      });
    const a = new SagaRunner({ store, sagas: [saga], pollIntervalMs: 2, concurrency: 8, owner: 'A' });
    const b = new SagaRunner({ store, sagas: [saga], pollIntervalMs: 2, concurrency: 8, owner: 'B' });
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => a.begin(saga, i)));
    a.start();
    b.start();
    for (const id of ids) assert.equal((await a.wait(id)).status, 'completed');
    await Promise.all([a.stop(), b.stop()]);
    assert.equal(runs.size, 120);
    assert.ok([...runs.values()].every((n) => n === 1));
  });

  test('a runner that stalls loses its lease; another finishes the saga and the stalled commit is fenced out', async () => {
    const store = new MemorySagaStore();
    const effects: string[] = [];
    let release: () => void = () => undefined;
    let first = true;
    const saga = defineSaga<null>('stall').step('slow', {
      run: async (ctx) => {
        if (first) {
          first = false;
          await new Promise<void>((r) => (release = r)); // a process frozen mid-step
        }
        ctx.effect<MemorySagaTx>((tx) => tx.push(() => void effects.push(ctx.sagaId)));
        return 'done';
      },
    });
    const errors: Error[] = [];
    const a = new SagaRunner<MemorySagaTx>({
      store,
      sagas: [saga],
      leaseMs: 60,
      pollIntervalMs: 5,
      owner: 'A',
      onError: (e) => void errors.push(e),
    });
    const b = new SagaRunner<MemorySagaTx>({
      store,
      sagas: [saga],
      leaseMs: 60,
      pollIntervalMs: 5,
      owner: 'B',
    });
    a.start();
    const id = await a.begin(saga, null);
    await until(() => !first, 'A started the step');
    // A's heartbeat keeps the lease alive while A is alive; stop its loop timer by freezing: simulate
    // with a store-level lease steal after expiry by stopping A's renewals (A is "frozen").
    (a as unknown as { store: { renew: () => Promise<boolean> } }).store.renew = async () => false;
    await sleep(100);
    b.start();
    assert.equal((await b.wait(id)).status, 'completed');
    release();
    await sleep(30);
    assert.deepEqual(effects, [id], 'the effect landed once');
    assert.ok(
      errors.some((e) => e.name === 'SagaLeaseLostError'),
      'A learned it lost the lease',
    );
    await Promise.all([a.stop(), b.stop()]);
  });

  test('observers see every saga start and finish with its status', async () => {
    const seen: string[] = [];
    const steps: string[] = [];
    const observer: SagaObserver = {
      onSagaStarted: (i) => void seen.push(`start:${i.sagaType}`),
      onSagaFinished: (i) => void seen.push(`${i.status}`),
      onStepFinished: (i) => void steps.push(`${i.kind}:${i.step}:${i.error ? 'err' : 'ok'}`),
    };
    const log: string[] = [];
    const r = runner(threeSteps(log), { observers: [observer] });
    r.start();
    await r.wait(await r.begin('three', { orderId: 'x' }));
    await r.wait(await r.begin('three', { orderId: 'y', failAt: 'b' }));
    await r.stop();
    assert.deepEqual(seen, ['start:three', 'completed', 'start:three', 'compensated']);
    assert.deepEqual(steps, [
      'action:a:ok',
      'action:b:ok',
      'action:c:ok',
      'action:a:ok',
      'action:b:err',
      'compensation:a:ok',
    ]);
  });
});
