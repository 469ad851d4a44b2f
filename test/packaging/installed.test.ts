import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

/**
 * Herald as a user gets it: `npm pack`, installed from the tarball into a fresh app, used through
 * `npx herald` (node_modules/.bin) and compiled against with strict settings. Bounded: about 1-2
 * minutes, most of it the build and the install from the npm cache.
 */
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'herald-installed-'));
const app = join(work, 'app');
after(() => rmSync(work, { recursive: true, force: true }));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, HERALD_TRANSPORT: '', HERALD_DB: '', npm_config_update_notifier: 'false' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? String(err),
    };
  }
}

const npmInstall = (cwd: string, ...specs: string[]) =>
  sh(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...specs],
    cwd,
    240_000,
  );
const npx = (...args: string[]) => sh('npx', ['--no-install', 'herald', ...args], app);

test(
  'the packed tarball installs into a fresh app and works through npx herald',
  { timeout: 600_000 },
  async () => {
    const build = await sh('npm', ['run', 'build', '--silent'], ROOT, 300_000);
    assert.equal(build.code, 0, build.stderr + build.stdout);
    const pack = await sh('npm', ['pack', '--silent', '--pack-destination', work], ROOT);
    assert.equal(pack.code, 0, pack.stderr);
    const tarball = join(
      work,
      readdirSync(work).find((f) => f.endsWith('.tgz'))!,
    );

    await sh('mkdir', ['-p', app], work);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }),
    );
    const installed = await npmInstall(app, tarball);
    assert.equal(installed.code, 0, installed.stderr);

    // Without the driver the README asks for: one line that says what to install.
    const noDriver = await npx(
      'publish',
      'shop.order.placed',
      '--transport',
      `sqlite://${join(app, 'x.db')}`,
    );
    assert.equal(noDriver.code, 1, noDriver.stdout + noDriver.stderr);
    assert.equal(
      noDriver.stderr.trim(),
      'herald publish: the sqlite backend needs the package better-sqlite3, which is not installed: npm install better-sqlite3 [HERALD_DRIVER_MISSING]',
    );

    // `npm install herald better-sqlite3`, as the README says. better-sqlite3 comes from a copy of
    // this checkout's compiled one, installed without scripts: with no prebuilt binary to download
    // its install script compiles SQLite for minutes (and would rebuild the linked directory).
    const copy = join(work, 'better-sqlite3');
    await sh('cp', ['-r', join(ROOT, 'node_modules', 'better-sqlite3'), copy], work);
    // A linked directory resolves its own dependencies from where it lies.
    await sh('mkdir', ['-p', join(copy, 'node_modules')], work);
    for (const dep of ['bindings', 'file-uri-to-path'])
      await sh('cp', ['-r', join(ROOT, 'node_modules', dep), join(copy, 'node_modules', dep)], work);
    const driver = await npmInstall(
      app,
      '--ignore-scripts',
      copy,
      join(ROOT, 'node_modules', '@types', 'node'),
    );
    assert.equal(driver.code, 0, driver.stderr);

    const help = await npx('--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: herald <command>/);
    const version = await npx('--version');
    assert.equal(
      version.stdout.trim(),
      `herald ${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}`,
    );

    const demo = await sh(
      'npx',
      ['--no-install', 'herald', 'demo', '--duration', '3', '--json', '--port', '0'],
      app,
      120_000,
    );
    assert.equal(demo.code, 0, demo.stderr);
    const summary = JSON.parse(demo.stdout) as { lost: number; published: number; transport: string };
    assert.equal(summary.lost, 0);
    assert.ok(summary.published > 0);
    assert.match(summary.transport, /^sqlite:/);

    // Typings compile for a strict user without skipLibCheck and without @types/better-sqlite3.
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          noEmit: true,
          types: ['node'],
        },
        include: ['main.ts'],
      }),
    );
    writeFileSync(
      join(app, 'main.ts'),
      [
        "import { createHerald, defineEvent } from 'herald';",
        "import { sqlite } from 'herald/sqlite';",
        "import { createHeraldFromConfig } from 'herald/config';",
        "import { createObservability } from 'herald/observability';",
        "import { HealthChecker } from 'herald/health';",
        "import { runTransportSuite } from 'herald/testing';",
        "const OrderPlaced = defineEvent<{ orderId: string }>('shop.order.placed');",
        "const herald = await createHerald({ service: 'shop', transport: sqlite({ path: 'x.db' }) });",
        "await herald.publish(OrderPlaced, { orderId: '1' });",
        'void [createHeraldFromConfig, createObservability, HealthChecker, runTransportSuite];',
      ].join('\n'),
    );
    const tsc = await sh(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app],
      app,
    );
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
  },
);

test('benchmark-only dev dependencies that need Node 22 are not imported by the library or the tests', () => {
  const grep = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.ts'))
      .map((f) => join(f.parentPath, f.name))
      .filter((f) => /from ['"](cockatiel|opossum)['"]/.test(readFileSync(f, 'utf8')));
  assert.deepEqual([...grep(join(ROOT, 'src')), ...grep(join(ROOT, 'test'))], []);
});
