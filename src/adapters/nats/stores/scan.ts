import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';

export interface Scanned {
  readonly seq: number;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

/**
 * Reads the messages of `stream` on `filter` from `startSeq` in order, with an ordered consumer
 * (server-side filtering by subject), until the end of the stream as it was when the scan began.
 */
export async function* scan(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  startSeq: number,
  batch = 256,
): AsyncGenerator<Scanned> {
  // Nothing to read: say so without waiting for a pull to expire.
  const first = await jsm.direct.getMessage(stream, { next_by_subj: filter, seq: Math.max(1, startSeq) });
  if (!first) return;
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: first.seq,
  });
  try {
    for (;;) {
      const iter = await consumer.fetch({ max_messages: batch, expires: 2000 });
      let last = -1;
      for await (const m of iter) {
        last = m.info.pending;
        yield { seq: m.seq, headers: m.headers, data: m.data };
        if (last === 0) {
          iter.stop();
          break;
        }
      }
      if (last <= 0) return;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
