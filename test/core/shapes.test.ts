import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const probe = fileURLToPath(new URL('../support/shape-probe.ts', import.meta.url));

// Not a timing test: V8 reports whether objects share a hidden class. On Node 20 an object spread
// followed by another property gives every object its own, which makes each observer and handler
// read megamorphic (ADR 0406); this keeps the consumer's per-event objects from regressing to it.
test('observer payloads and typed events share one hidden class per kind', () => {
  const out = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', probe], {
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  const result = JSON.parse(out.stdout) as Record<string, number>;
  assert.deepEqual(result, { infos: 300, infoOutliers: 0, events: 300, eventOutliers: 0 });
});
