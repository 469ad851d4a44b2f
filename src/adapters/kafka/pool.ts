/*
 * The client runs every blocking librdkafka call (a consumer's poll, connect, close, committed
 * offsets, metadata) on Node's libuv threadpool, shared by the whole process and by fs and dns.
 * Each open consumer keeps one thread busy for most of its life (a poll waits up to
 * `pollTimeoutMs`), and a consumer close that librdkafka does not finish holds its thread for
 * good. Past the pool size, calls queue behind one another; when closes hang, the process stalls
 * with idle CPUs. Counted per process, across transports.
 */

/** Threads in the libuv pool, as Node sized it at start (it cannot change afterwards). */
export function threadpoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env['UV_THREADPOOL_SIZE']);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

let open = 0;
let warned = false;

/** A librdkafka consumer of this process connected; warns once when they outnumber the pool. */
export function consumerOpened(report: (error: Error, context: string) => void): void {
  open++;
  const size = threadpoolSize();
  if (warned || open <= size) return;
  warned = true;
  report(
    new Error(
      `${open} Kafka consumers are open in this process but the libuv threadpool has ${size} threads ` +
        `(UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? 'unset, default 4'}); each consumer's ` +
        'polls, connect and close take a pool thread, so they queue and the process can stall. ' +
        'Start Node with UV_THREADPOOL_SIZE at least the number of consumers plus 4 (see docs/adapters/kafka.md).',
    ),
    'threadpool',
  );
}

/** A consumer of this process disconnected. */
export function consumerClosed(): void {
  open = Math.max(0, open - 1);
}

/** Consumers open now (tests). */
export function openConsumers(): number {
  return open;
}

/*
 * Closes go one at a time per process. A consumer close blocks its pool thread until the group
 * has settled its leave, and the group settles only when the other members poll, which needs pool
 * threads too: with several members of one group closing at once, the closes can take every thread
 * and wait for polls that can no longer run (seen with 10 members of one group on 4 threads).
 */
let closing: Promise<void> = Promise.resolve();

/**
 * Runs `close` once every close queued before it has finished, or has run for `boundMs` (a close
 * that never ends must not hold up the others for good).
 */
export function oneCloseAtATime(boundMs: number, close: () => Promise<void>): Promise<void> {
  let release!: () => void;
  const next = new Promise<void>((resolve) => (release = resolve));
  const run = closing.then(() => {
    const timer = setTimeout(release, boundMs);
    timer.unref();
    return close().finally(() => {
      clearTimeout(timer);
      release();
    });
  });
  closing = next;
  return run;
}
