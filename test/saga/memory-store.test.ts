import { MemorySagaStore, type MemorySagaTx } from '../../src/saga/index.js';
import { runSagaStoreSuite } from '../../src/saga/testing.js';

const counters = new Map<string, number>();

runSagaStoreSuite<MemorySagaTx>('memory', () => new MemorySagaStore(), {
  effects: {
    increment: (key) => (tx) => tx.push(() => void counters.set(key, (counters.get(key) ?? 0) + 1)),
    failing: () => () => {
      throw new Error('effect failed on purpose');
    },
    read: async (key) => counters.get(key) ?? 0,
  },
});
