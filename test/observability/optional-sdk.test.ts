/**
 * The OpenTelemetry SDK and exporter are optional peers (docs/observability.md): the main entry and
 * herald/observability load without them, and switching tracing on without them names the package
 * to install. A static import of any of them coming back makes the child fail at import.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

async function withHidden(hide: 'sdk' | 'exporter'): Promise<Record<string, unknown>> {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      path.join(here, 'fixtures', 'hide-otel-sdk.mjs'),
      path.join(here, 'fixtures', 'without-otel-sdk.ts'),
    ],
    { timeout: 60_000, env: { ...process.env, HIDE_OTEL: hide } },
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.equal(result.importHidden, true, 'the package is hidden from import');
  assert.equal(result.requireHidden, true, 'the package is hidden from require');
  assert.equal(result.handled, 1, 'an event went through a Herald with metrics and logging');
  return result;
}

const missing = (feature: string, pkg: string) => ({
  code: 'HERALD_DRIVER_MISSING',
  message: `${feature} needs the package ${pkg}, which is not installed: npm install ${pkg}`,
});

test('main entry and herald/observability work without the OpenTelemetry SDK; tracing names what to install', async () => {
  const result = await withHidden('sdk');
  const sdk = missing(
    'OpenTelemetry tracing (createObservability({ tracing }))',
    '@opentelemetry/sdk-trace-base',
  );
  assert.deepEqual(result.console, sdk);
  assert.deepEqual(result.otlp, sdk);
});

test('without the OTLP exporter, tracing to the console works and otlp names the exporter package', async () => {
  const result = await withHidden('exporter');
  assert.equal(result.console, 'created');
  assert.deepEqual(
    result.otlp,
    missing('the OTLP trace exporter (exporter: "otlp")', '@opentelemetry/exporter-trace-otlp-proto'),
  );
});
