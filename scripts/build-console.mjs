// Bundles the console page (src/console/ui) into src/console/static, where the handler serves it
// from source (`npm start` and `npm test` run this first; it takes about a second), and copies it to
// dist/console/static for the package. The output is generated, not committed.
import { build } from 'esbuild';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const ui = path.join(root, 'src/console/ui');
const out = path.join(root, 'src/console/static');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [path.join(ui, 'app.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  outfile: path.join(out, 'app.js'),
  legalComments: 'eof',
  logLevel: 'warning',
});
const css = [
  await readFile(path.join(root, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8'),
  await readFile(path.join(ui, 'app.css'), 'utf8'),
].join('\n');
await writeFile(path.join(out, 'app.css'), css);
await writeFile(path.join(out, 'index.html'), await readFile(path.join(ui, 'index.html')));
if (existsSync(path.join(root, 'dist/console')))
  await cp(out, path.join(root, 'dist/console/static'), { recursive: true });
