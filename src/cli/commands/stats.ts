import { COMMON_OPTIONS, EXIT, flag, JSON_OPTION, parseCommand, type OptionSpecs } from '../args.js';
import { withHerald, type Command } from '../command.js';
import { printJson, printTable } from '../output.js';

const options = {
  topic: { type: 'string', short: 't', multiple: true, arg: '<topic>', help: 'topic to report; repeatable' },
  group: {
    type: 'string',
    short: 'g',
    multiple: true,
    arg: '<group>',
    help: 'consumer group to report; repeatable',
  },
  ...JSON_OPTION,
} as const satisfies OptionSpecs;

/** One row of `herald stats`. */
export interface StatsRow {
  readonly topic: string;
  readonly group: string;
  /** Published, not yet delivered to the group; null when the transport cannot tell. */
  readonly lag: number | null;
  readonly inFlight: number | null;
  /** Waiting for a retry. */
  readonly delayed: number | null;
  /** Published for a later time and not yet due (per topic); null when the transport cannot tell. */
  readonly scheduled: number | null;
  readonly deadLetters: number;
}

export const statsCommand: Command = {
  name: 'stats',
  summary:
    'Queue depths per topic and group: lag, in flight, waiting for retry, scheduled for later, dead letters.',
  usage: ['herald stats [--topic <t>]... [--group <g>]... [--json]'],
  options,
  details: [
    'Which pairs: with --topic and --group, every combination of them; otherwise every topic and',
    'group on the broker (and every pair with dead letters), filtered by the one given.',
  ].join('\n'),
  async run(argv, io) {
    const { values } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env);
    const topics = (values['topic'] as string[] | undefined) ?? [];
    const groups = (values['group'] as string[] | undefined) ?? [];
    const rows = await withHerald(values, io, async (herald, opened) => {
      const pairs = new Map<string, readonly [string, string]>();
      const add = (t: string, g: string): void => void pairs.set(`${t}\u0000${g}`, [t, g]);
      if (topics.length > 0 && groups.length > 0) {
        for (const t of topics) for (const g of groups) add(t, g);
      } else {
        // Every topic and group the broker holds (transports that can list them), and every pair
        // with dead letters (a group may be gone while its dead letters stay).
        for (const { topic, groups: names } of (await opened.transport.topology?.()) ?? [])
          for (const g of names) add(topic, g);
        let cursor: string | undefined;
        do {
          const page = await herald.deadLetters.list({}, { limit: 1000, ...(cursor ? { cursor } : {}) });
          for (const e of page.items) add(e.topic, e.group);
          cursor = page.nextCursor;
        } while (cursor);
      }
      const selected = [...pairs.values()]
        .filter(
          ([t, g]) =>
            (topics.length === 0 || topics.includes(t)) && (groups.length === 0 || groups.includes(g)),
        )
        .sort(([t1, g1], [t2, g2]) => t1.localeCompare(t2) || g1.localeCompare(g2));
      const out: StatsRow[] = [];
      for (const [topic, group] of selected) {
        const s = opened.transport.stats ? await opened.transport.stats(topic, group) : undefined;
        out.push({
          topic,
          group,
          lag: s?.lag ?? null,
          inFlight: s?.inFlight ?? null,
          delayed: s?.delayed ?? null,
          scheduled: s?.scheduled ?? null,
          deadLetters: await herald.deadLetters.count({ topic, group }),
        });
      }
      return { transport: opened.transport.name, rows: out };
    });
    if (flag(values, 'json')) printJson(io, { transport: rows.transport, groups: rows.rows });
    else
      printTable(
        io,
        rows.rows.map((r) => ({
          ...r,
          lag: r.lag ?? '?',
          inFlight: r.inFlight ?? '?',
          delayed: r.delayed ?? '?',
          scheduled: r.scheduled ?? '?',
        })),
        ['topic', 'group', 'lag', 'inFlight', 'delayed', 'scheduled', 'deadLetters'],
      );
    return EXIT.ok;
  },
};
