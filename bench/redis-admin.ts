import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { countInstructions, type CallgrindChild } from './callgrind.js';

/**
 * Deletes every key a bench run created under `prefix`: the transport's `<prefix>:…` keys and the
 * stores' `{<prefix>:…}` ones (hash-tagged so a cluster keeps them on one slot). SCAN + UNLINK, so
 * a large backlog is freed without blocking the server.
 */
export async function removeKeys(admin: Redis, prefix: string): Promise<void> {
  for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
  }
}

/**
 * Instructions a redis-server run under callgrind has executed so far, read with
 * `callgrind_control -e Ir <pid>`: the server's work for a span of a bench, whatever the machine's
 * load. Start it as `valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.redis redis-server --port
 * <port> --save '' --appendonly no` and pass its pid. Its cron (hz 10) runs meanwhile too, a small
 * share that grows with the span's wall time.
 */
export function serverInstructions(pid: string): number {
  const out = execFileSync('callgrind_control', ['-e', 'Ir', pid], { encoding: 'utf8' });
  // "Totals: Ir" then one line per thread: " Th 1  15,638,400".
  const threads = [...out.matchAll(/^\s*Th\s+\d+\s+([\d,]+)/gm)];
  if (threads.length === 0) throw new Error(`no Ir in callgrind_control output: ${out}`);
  return threads.reduce((sum, m) => sum + Number(m[1]!.replace(/,/g, '')), 0);
}

/**
 * Instructions of one bench child under callgrind and, when SERVER_CALLGRIND_PID names a
 * redis-server under callgrind, of that server while the child ran (its start-up and warm-up
 * included: they cancel out in a difference of two sizes). Then removes the run's keys.
 */
export async function countClientAndServer(
  child: CallgrindChild,
  url: string,
  prefix: string,
): Promise<{ client: number; server: number }> {
  const server = process.env.SERVER_CALLGRIND_PID;
  const serverBefore = server ? serverInstructions(server) : 0;
  try {
    const client = countInstructions(child).total;
    return { client, server: server ? serverInstructions(server) - serverBefore : 0 };
  } finally {
    const admin = new Redis(url);
    await removeKeys(admin, prefix);
    admin.disconnect();
  }
}
