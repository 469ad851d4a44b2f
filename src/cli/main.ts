#!/usr/bin/env node
/**
 * The `herald` binary: `herald <command> [options]`. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { ConfigError, HeraldError } from '../core/errors.js';
import { EXIT, UsageError } from './args.js';
import { helpText, usageText, type Command } from './command.js';
import { consoleCommand } from './commands/console.js';
import { demoCommand } from './commands/demo.js';
import { devCommand } from './commands/dev.js';
import { dlqCommand } from './commands/dlq.js';
import { publishCommand } from './commands/publish.js';
import { sagaCommand } from './commands/saga.js';
import { statsCommand } from './commands/stats.js';
import { tailCommand } from './commands/tail.js';
import { processIo, type Io } from './output.js';

export const COMMANDS: readonly Command[] = [
  demoCommand,
  publishCommand,
  tailCommand,
  dlqCommand,
  statsCommand,
  sagaCommand,
  devCommand,
  consoleCommand,
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: herald <command> [options]',
    `Commands:\n${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}`,
    'Run `herald <command> --help` for its options, `herald --version` for the version. Exit codes: 0 ok, 1 failure, 2 usage error.\n' +
      'Environment: HERALD_TRANSPORT (transport URL), HERALD_DB (SQLite file), HERALD_PORT, HERALD_JSON; flags win.',
  ].join('\n\n');
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout.write(`herald ${version()}\n`);
    return EXIT.ok;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? io.stderr : io.stdout).write(`${mainHelp()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`herald: unknown command ${JSON.stringify(name)}\n\n${mainHelp()}\n`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${helpText(command)}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      const usage = err.showUsage ? `\n${usageText(command)}\n` : '';
      io.stderr.write(`herald ${command.name}: ${err.message}\n${usage}`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      // Bad option values (a wrong transport URL, a bad cursor): the caller must change the command line.
      io.stderr.write(`herald ${command.name}: ${err.message}\n`);
      return EXIT.usage;
    }
    const e = err as Error;
    const code = e instanceof HeraldError ? ` [${e.code}]` : '';
    // One line: a driver that is not installed, a broker that does not answer, a missing database.
    const text = (e.message ?? String(err)).replace(/\s*\n\s*/g, ' ');
    io.stderr.write(`herald ${command.name}: ${text}${code}\n`);
    if (io.env['HERALD_DEBUG']) io.stderr.write(`${e.stack ?? ''}\n`);
    return EXIT.failure;
  }
}

/** The installed package's version (package.json sits two levels above both src/cli and dist/cli). */
export function version(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/**
 * Runs the CLI on `process.argv` and exits with its code once stdout has drained. The published
 * binary (bin/herald.js) calls this whatever path it was started through (`node_modules/.bin`,
 * `npx`, a symlink); `tsx src/cli/main.ts` runs it too.
 */
export async function runCli(): Promise<void> {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  setImmediate(() => process.exit(code)).unref();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await runCli();
