import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import {
  ConfigValidationError,
  createHeraldFromConfig,
  loadConfig,
  validateConfig,
} from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'herald-config-'));
const plainFile = (): string => {
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, 'not a directory');
  return file;
};
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function rejectsWith(
  promise: Promise<unknown>,
  field: string,
  pattern: RegExp,
): Promise<ConfigValidationError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ConfigValidationError, `expected ConfigValidationError, got ${String(err)}`);
    assert.ok(err instanceof ConfigError, 'is a typed ConfigError');
    assert.equal(err.field, field);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected a config error');
}

describe('loadConfig', () => {
  test('a valid YAML file, with defaults applied', async () => {
    const config = await loadConfig({
      file: file('ok.yaml', 'service: billing\ntransport:\n  url: sqlite://.herald/events.db\n'),
      env: {},
    });
    assert.deepEqual(config, {
      service: 'billing',
      transport: { url: 'sqlite://.herald/events.db' },
      logLevel: 'info',
      drainTimeoutMs: 30_000,
      shutdown: { readinessDelayMs: 5000, timeoutMs: 35_000 },
      health: { maxEventLoopDelayMs: 2000 },
    });
  });

  test('JSON files and the transport shorthand string', async () => {
    const config = await loadConfig({
      file: file('ok.json', '{"service":"a","transport":"redis://127.0.0.1:6379/2"}'),
      env: {},
    });
    assert.equal(config.transport.url, 'redis://127.0.0.1:6379/2');
  });

  test('unknown field: names it and lists the known ones', async () => {
    const p = file('typo.yaml', 'service: a\ntransport:\n  url: memory://\n  urll: memory://\n');
    await rejectsWith(
      loadConfig({ file: p, env: {} }),
      `transport.urll (in ${p})`,
      /config error at transport\.urll .*: unknown field; known fields: url, options/,
    );
  });

  test('wrong type: says what was expected and what was given', async () => {
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'memory://', drainTimeoutMs: 'soon' }, env: {} }),
      'drainTimeoutMs',
      /config error at drainTimeoutMs: expected number, got "soon"/,
    );
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'memory://', drainTimeoutMs: 1.5 }, env: {} }),
      'drainTimeoutMs',
      /expected an integer, got 1.5/,
    );
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'memory://', logLevel: 'loud' }, env: {} }),
      'logLevel',
      /expected one of "fatal", .*got "loud"/,
    );
  });

  test('bad URL', async () => {
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'foo' }, env: {} }),
      'transport.url',
      /config error at transport\.url: not a URL; expected one of memory:\/\/, sqlite:\/\/<path>, redis:\/\/host:port\[\/db\].*, got "foo"/,
    );
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'sqlite://' }, env: {} }),
      'transport.url',
      /needs a file path/,
    );
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'redis://h:1/abc' }, env: {} }),
      'transport.url',
      /database must be a number/,
    );
  });

  test('an unknown scheme fails fast, naming the schemes Herald knows', async () => {
    await rejectsWith(
      loadConfig({ overrides: { service: 'a', transport: 'amqp://127.0.0.1:5672' }, env: {} }),
      'transport.url',
      /the scheme amqp: is not one Herald knows; expected one of memory:\/\/, sqlite:\/\/<path>/,
    );
  });

  test('missing required fields, all reported', async () => {
    const err = await rejectsWith(
      loadConfig({ file: file('empty.yaml', ''), env: {} }),
      `service (in ${path.join(dir, 'empty.yaml')})`,
      /service .*is required \(expected string\)/,
    );
    assert.deepEqual(
      err.issues.map((i) => i.path.split(' ')[0]),
      ['service', 'transport'],
    );
  });

  test('bad YAML syntax reports the file, line and column', async () => {
    const p = file('bad.yaml', 'service: a\ntransport:\n  url: a: b\nlogLevel: info\n');
    const err = await rejectsWith(
      loadConfig({ file: p, env: {} }),
      `${p}:3:8`,
      /invalid YAML at line 3: Nested mappings are not allowed/,
    );
    const dup = file('dup.yaml', 'service: a\nservice: b\n');
    await rejectsWith(loadConfig({ file: dup, env: {} }), `${dup}:2:1`, /Map keys must be unique/);
    assert.match(err.message, /config error at .*bad\.yaml:3:8/);
  });

  test('a missing file and a non-mapping file', async () => {
    await rejectsWith(
      loadConfig({ file: path.join(dir, 'nope.yaml'), env: {} }),
      path.join(dir, 'nope.yaml'),
      /file not found/,
    );
    await rejectsWith(
      loadConfig({ file: file('list.yaml', '- a\n- b\n'), env: {} }),
      `${path.join(dir, 'list.yaml')} (root)`,
      /expected a mapping of fields, got a list/,
    );
  });

  test('precedence: file < environment < overrides, field by field', async () => {
    const p = file(
      'prec.yaml',
      'service: from-file\nlogLevel: warn\ntransport:\n  url: memory://\n  options: { pollIntervalMs: 50 }\n',
    );
    const env = {
      HERALD_SERVICE: 'from-env',
      HERALD_TRANSPORT: 'sqlite:/tmp/x.db',
      HERALD_DRAIN_TIMEOUT_MS: '1000',
      HERALD_READINESS_DELAY_MS: '0',
    };
    const config = await loadConfig({ file: p, env, overrides: { service: 'from-code' } });
    assert.equal(config.service, 'from-code');
    assert.equal(config.transport.url, 'sqlite:/tmp/x.db', 'env beats file');
    assert.deepEqual(config.transport.options, { pollIntervalMs: 50 }, 'env replaced only the url');
    assert.equal(config.logLevel, 'warn', 'file value kept where env is silent');
    assert.equal(config.drainTimeoutMs, 1000, 'numeric env parsed');
    assert.equal(config.shutdown.readinessDelayMs, 0);
  });

  test('an invalid environment value names the variable', async () => {
    await rejectsWith(
      loadConfig({
        overrides: { service: 'a', transport: 'memory://' },
        env: { HERALD_LOG_LEVEL: 'chatty' },
      }),
      'logLevel (from HERALD_LOG_LEVEL)',
      /got "chatty"/,
    );
    await rejectsWith(
      loadConfig({
        env: { HERALD_SERVICE: 'a', HERALD_TRANSPORT: 'memory://', HERALD_DRAIN_TIMEOUT_MS: '5s' },
      }),
      'drainTimeoutMs (from HERALD_DRAIN_TIMEOUT_MS)',
      /expected number, got "5s"/,
    );
  });

  test('environment alone is enough (no file)', async () => {
    const config = await loadConfig({
      env: { HERALD_SERVICE: 'svc', HERALD_TRANSPORT: 'memory://', HERALD_DB: 'sqlite:./x.db' },
    });
    assert.equal(config.stores?.url, 'sqlite:./x.db');
  });

  test('validateConfig checks an object without reading the environment', () => {
    assert.throws(
      () => validateConfig({ service: '', transport: 'memory://' }),
      /config error at service: expected a non-empty string, got ""/,
    );
  });
});

describe('createHeraldFromConfig', () => {
  const quiet = {
    logger: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
  };

  test('memory:// works end to end', async () => {
    const herald = await createHeraldFromConfig({ service: 'a', transport: 'memory://' }, quiet);
    assert.equal(herald.transport.name, 'memory');
    await herald.stop();
  });

  test('the default logger writes ISO 8601 `time` (docs/observability.md)', async () => {
    // pino writes to fd 1 directly, so the line is read from a child process's stdout.
    const config = path.resolve(import.meta.dirname, '../../src/config/index.ts');
    const script = `
      const { createHeraldFromConfig } = await import(${JSON.stringify(pathToFileURL(config).href)});
      const herald = await createHeraldFromConfig({ service: 'iso', transport: 'memory://' });
      await herald.stop();`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    const line = stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg?: string; time?: unknown })
      .find((l) => l.msg === 'herald configured');
    assert.ok(line, `a 'herald configured' line in ${stdout}`);
    assert.equal(typeof line.time, 'string', `time is ${JSON.stringify(line.time)}`);
    assert.match(line.time as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(line.time as string) - Date.now()) < 60_000, 'the time is now');
  });

  test('sqlite:// from a YAML file: transport and durable stores on the file', async () => {
    const db = path.join(dir, 'events.db');
    const herald = await createHeraldFromConfig(
      file('sqlite.yaml', `service: a\ntransport: sqlite://${db}\n`),
      quiet,
    );
    try {
      assert.equal(herald.transport.name, 'sqlite');
      assert.equal(herald.deadLetters.store.constructor.name, 'SqliteDeadLetterStore');
    } finally {
      await herald.stop();
    }
  });

  test('redis:// against the real server', async () => {
    const herald = await createHeraldFromConfig(
      {
        service: 'a',
        transport: { url: 'redis://127.0.0.1:6379/0', options: { prefix: 'herald-config-test' } },
      },
      quiet,
    );
    assert.equal(herald.transport.name, 'redis');
    await herald.stop();
  });

  test('an unreachable required transport fails fast, no fallback', async () => {
    await assert.rejects(
      createHeraldFromConfig(
        { service: 'a', transport: 'redis://127.0.0.1:1/0' },
        { ...quiet, connectTimeoutMs: 500 },
      ),
      (err: Error & { code?: string }) =>
        err.code === 'HERALD_TRANSPORT_UNREACHABLE' &&
        /redis:\/\/127\.0\.0\.1:1\/0 is unreachable/.test(err.message),
    );
    await assert.rejects(
      createHeraldFromConfig(
        // A path through a regular file: no directory can be made there.
        { service: 'a', transport: `sqlite://${path.join(plainFile(), 'x.db')}` },
        quiet,
      ),
      (err: Error & { code?: string }) => err.code === 'HERALD_TRANSPORT_UNREACHABLE',
    );
  });

  test('adapter options are validated by the adapter (unknown option names the field)', async () => {
    await assert.rejects(
      createHeraldFromConfig(
        { service: 'a', transport: { url: `sqlite://${path.join(dir, 'o.db')}`, options: { visibilty: 1 } } },
        quiet,
      ),
      ConfigError,
    );
  });
});
