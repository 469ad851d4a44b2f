/**
 * Instructions per event of one SQLite consumer process (the in-process part of `npm run bench --
 * sqlite`), counted by callgrind so the figure does not move with the machine's load:
 *
 *   node --import tsx bench/sqlite-callgrind.ts prepare <file> <n>
 *   valgrind --tool=callgrind --smc-check=all --callgrind-out-file=<out> \
 *     node --import tsx bench/sqlite-callgrind.ts consume <file> <n> <concurrency>
 *
 * `prepare` publishes n Herald envelopes (64 aggregates) into a new file with the consumer group
 * already created; `consume` drains them with `createHerald` and `sqlite({ path })` (the README
 * configuration) and exits. Run `consume` for two sizes: (Ir(n2) − Ir(n1)) / (n2 − n1) is the
 * per-event count with start-up cancelled out.
 *
 *   node --import tsx bench/sqlite-callgrind.ts drain <file> <concurrency>
 *
 * `drain` is for several consumer processes of the one group (start one or more at once on a
 * prepared file): each consumes until the group is drained and prints the events it handled and
 * the CPU time it used, so the CPU per event of one and of two processes can be compared on a
 * loaded machine, where their wall-clock rates cannot, and its transport's counters (transactions,
 * lock misses and waits, rows leased from the log and from pending rows, rows held back: ADR 0207). HERALD_SQLITE_BUFFER sets the transport's
 * `bufferSize` (ADR 0206) in either command.
 */
import Database from 'better-sqlite3';
import { createHerald } from '../src/index.js';
import { sqlite, sqliteStores, type SqliteTransport } from '../src/adapters/sqlite/index.js';

const [command, file, count, concurrency] = process.argv.slice(2);
const n = Number(count);
/** The consumer's transport, for its counters. */
let transport: SqliteTransport | undefined;

async function consumer(
  onEvent: () => void,
  handlers = Number(concurrency ?? 8),
): Promise<Awaited<ReturnType<typeof createHerald>>> {
  transport = sqlite({
    path: file!,
    ...(process.env.HERALD_SQLITE_BUFFER ? { bufferSize: Number(process.env.HERALD_SQLITE_BUFFER) } : {}),
  });
  const herald = await createHerald({
    service: 'bench-consumer',
    transport,
    stores: sqliteStores({ path: file! }),
    routing: { 'bench.*': 'bench' },
  });
  herald.subscribe({
    group: 'bench',
    events: ['bench.*'],
    concurrency: handlers,
    handler: onEvent,
  });
  return herald;
}

if (command === 'prepare') {
  const group = await consumer(() => undefined);
  await group.start(); // creates the group at the start of the (empty) log
  await group.stop();
  const producer = await createHerald({
    service: 'bench',
    transport: sqlite({ path: file! }),
    routing: { 'bench.*': 'bench' },
  });
  for (let i = 0; i < n; i += 500) {
    await producer.publishBatch(
      Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
        event: 'bench.thing.happened',
        payload: { n: i + j, text: 'x'.repeat(200) },
        options: { aggregateId: `a${(i + j) % 64}` },
      })),
    );
  }
  await producer.stop();
} else if (command === 'consume') {
  let handled = 0;
  let done!: () => void;
  const drained = new Promise<void>((resolve) => (done = resolve));
  const herald = await consumer(() => {
    if (++handled === n) done();
  });
  await herald.start();
  await drained;
  await herald.stop();
} else if (command === 'drain') {
  let handled = 0;
  const herald = await consumer(() => void handled++, Number(count));
  // Drained: the group's cursor is at the end of the log and nothing is pending (any process's).
  const db = new Database(file!, { readonly: true });
  const drainedQuery = db.prepare(
    `SELECT NOT EXISTS (SELECT 1 FROM herald_pending WHERE group_id = g.id)
        AND g.cursor >= coalesce((SELECT max(seq) FROM herald_messages WHERE topic_id = g.topic_id), 0) AS done
       FROM herald_groups g JOIN herald_topics t ON t.id = g.topic_id WHERE t.name = 'bench' AND g.name = 'bench'`,
  );
  const started = performance.now();
  const cpu = process.cpuUsage();
  await herald.start();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if ((drainedQuery.get() as { done: number }).done !== 1) return;
      clearInterval(timer);
      resolve();
    }, 5);
  });
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - started;
  console.log(
    JSON.stringify({
      handled,
      cpuMs: (used.user + used.system) / 1000,
      ms: Math.round(ms),
      counters: transport!.counters(),
    }),
  );
  await herald.stop();
  db.close();
} else {
  console.error(
    'usage: sqlite-callgrind.ts prepare|consume <file> <n> [concurrency] | drain <file> <concurrency>',
  );
  process.exit(2);
}
