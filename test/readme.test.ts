/**
 * Runs the README's usage example exactly as written (with `from 'herald'` pointed at the source),
 * so the front door cannot rot.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

test('the README usage example runs and prints what it says', async () => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Usage'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'README has a ```ts block under "## Usage"');
  const code = match[1]!.replace(/from 'herald'/g, `from '${path.join(root, 'src', 'index.ts')}'`);
  const dir = path.join(root, '.tmp');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `readme-example-${process.pid}.ts`);
  await writeFile(file, code);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    timeout: 30_000,
  });
  assert.match(stdout, /conversation\.message\.sent #1 in c-1: hello/);
  assert.match(stdout, /dead letters: 0/);
});
