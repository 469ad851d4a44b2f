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
 */
import { createHerald } from '../src/index.js';
import { sqlite, sqliteStores } from '../src/adapters/sqlite/index.js';

const [command, file, count, concurrency] = process.argv.slice(2);
const n = Number(count);

async function consumer(onEvent: () => void): Promise<Awaited<ReturnType<typeof createHerald>>> {
  const herald = await createHerald({
    service: 'bench-consumer',
    transport: sqlite({
      path: file!,
      ...(process.env.HERALD_SQLITE_BUFFER ? { bufferSize: Number(process.env.HERALD_SQLITE_BUFFER) } : {}),
    }),
    stores: sqliteStores({ path: file! }),
    routing: { 'bench.*': 'bench' },
  });
  herald.subscribe({
    group: 'bench',
    events: ['bench.*'],
    concurrency: Number(concurrency ?? 8),
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
} else {
  console.error('usage: sqlite-callgrind.ts prepare|consume <file> <n> [concurrency]');
  process.exit(2);
}
