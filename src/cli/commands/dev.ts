import { MockCluster } from '../../adapters/kafka/mock-cluster.js';
import { EXIT, flag, numberOption, parseCommand, UsageError, type OptionSpecs } from '../args.js';
import type { Command } from '../command.js';
import { printJsonLine } from '../output.js';

const options = {
  brokers: { type: 'string', arg: '<n>', help: 'brokers in the mock cluster (default 3)' },
  duration: { type: 'string', arg: '<s>', help: 'stop after s seconds (default: until Ctrl-C)' },
  json: { type: 'boolean', help: 'print {"bootstrap": ..., "url": ...} as one JSON line' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies OptionSpecs;

export const devCommand: Command = {
  name: 'dev',
  summary: 'Host a local broker for trials: `herald dev kafka` runs a mock Kafka cluster.',
  usage: ['herald dev kafka [--brokers <n>] [--duration <s>] [--json]'],
  options,
  details: [
    'kafka: a librdkafka mock cluster hosted by kcat (apt-get install kcat). It speaks the Kafka',
    'protocol, keeps everything in memory and loses it on exit; topics auto-create with 4 partitions.',
    'It is for trying Herald out, not a broker: see docs/adapters/kafka.md.',
    '',
    'Example:',
    '  herald dev kafka            # prints kafka://127.0.0.1:…,… ; then in another shell:',
    '  herald demo --transport kafka://127.0.0.1:…,… --duration 5',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommand(argv, options, io.env, { positionals: true });
    if (positionals.length !== 1 || positionals[0] !== 'kafka')
      throw new UsageError(
        `name what to host: herald dev kafka (got ${positionals.join(' ') || 'nothing'})`,
        true,
      );
    const brokers =
      values['brokers'] === undefined ? 3 : numberOption(values, 'brokers', 3, { min: 1, integer: true });
    const durationS =
      values['duration'] === undefined ? undefined : numberOption(values, 'duration', 0, { min: 0 });
    const cluster = await MockCluster.start({ brokers });
    const url = `kafka://${cluster.bootstrap}`;
    if (flag(values, 'json')) printJsonLine(io, { bootstrap: cluster.bootstrap, url, pid: cluster.pid });
    else
      io.stdout.write(
        `mock Kafka cluster (${brokers} brokers, in memory) at ${cluster.bootstrap}\n` +
          `  herald demo --transport ${url}\nCtrl-C stops it.\n`,
      );
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        clearTimeout(timer);
        resolve();
      };
      const timer = durationS === undefined ? undefined : setTimeout(stop, durationS * 1000);
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await cluster.stop();
    return EXIT.ok;
  },
};
