/**
 * Benchmark runner: `npm run bench [-- case ...]`.
 *
 * Each case is a module in `bench/cases/<name>.ts` exporting `run(): Promise<string>` that returns a
 * Markdown section. The runner writes each section into `docs/benchmarks.md` between
 * `<!-- bench:<name> -->` markers, stamped with the machine and the command, so a case can be re-run
 * on its own without touching the results of the others.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const docPath = path.join(here, '..', 'docs', 'benchmarks.md');

const HEADER = `# Benchmarks

Produced by \`npm run bench\` (all cases) or \`npm run bench -- <case>\` (one case). Each section names the
machine and the command that produced it. Figures on a 2-core machine swing by ±30% from run to run;
compare ratios measured in the same run rather than absolute numbers across runs.
`;

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const mem = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${os.cpus().length} × ${cpu}, ${mem} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
}

async function availableCases(): Promise<string[]> {
  const files = await readdir(path.join(here, 'cases'));
  return files
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

async function main(): Promise<void> {
  const all = await availableCases();
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length > 0) {
    console.error(`unknown benchmark case(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
    process.exit(2);
  }
  const cases = wanted.length > 0 ? wanted : all;
  for (const name of cases) {
    console.log(`\n=== bench: ${name}`);
    const mod = (await import(pathToFileURL(path.join(here, 'cases', `${name}.ts`)).href)) as {
      run: () => Promise<string>;
    };
    const started = new Date().toISOString();
    const markdown = await mod.run();
    console.log(markdown);
    // A partial run (e.g. one row for profiling, HERALD_BENCH_ONLY) reports nothing: keep the section.
    if (markdown.trim() === '') continue;
    const section = `## ${name}\n\nMachine: ${machine()}  \nCommand: \`npm run bench -- ${name}\`  \nRun at: ${started}\n\n${markdown.trim()}\n`;
    // Re-read right before writing: cases can run for minutes and another run may have written meanwhile.
    const doc = await readFile(docPath, 'utf8').catch(() => HEADER);
    await writeFile(docPath, replaceSection(doc, name, section));
  }
}

await main();
