/**
 * The plots docs/performance.md shows, redrawn from results.json files (of
 * one run or several: a 10,000-target run beside a 100,1000 one).
 *
 *   node --import tsx bench/plot.ts [--out docs/img] [--soak] bench/results/<run>/results.json [...]
 *
 * Writes bench-scale.svg (RSS and CPU against targets, daemon and relay side
 * by side) and bench-over-time.svg (RSS and fds over each daemon run), or
 * with --soak bench-soak.svg.
 */
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import {join, relative, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {overTimePlot, scalePlot} from './lib/figures.js';
import {runMain, UsageError} from './lib/flags.js';
import {REPO_ROOT} from './lib/paths.js';
import type {ResultsDoc} from './lib/results.js';

async function main(): Promise<void> {
  const {values, positionals} = parseArgs({allowPositionals: true, options: {out: {type: 'string', default: 'docs/img'}, soak: {type: 'boolean', default: false}}});
  if (positionals.length === 0) throw new UsageError('give one or more results.json files');
  const docs = await Promise.all(positionals.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as ResultsDoc));
  const out = resolve(REPO_ROOT, values.out);
  await mkdir(out, {recursive: true});
  const written: string[] = [];
  const put = async (name: string, svg: string | undefined): Promise<void> => {
    if (svg === undefined) return;
    await writeFile(join(out, name), svg);
    written.push(relative(REPO_ROOT, join(out, name)));
  };
  if (values.soak) {
    const targets = [...new Set(docs.flatMap((d) => d.results.map((r) => r.targets)))].join(', ');
    const minutes = Math.round((docs[0]!.options.soakMs ?? 0) / 60_000);
    await put('bench-soak.svg', overTimePlot(docs, `Soak: ${targets} targets for ${minutes} min`, true));
  } else {
    await put('bench-scale.svg', scalePlot(docs));
    await put('bench-over-time.svg', overTimePlot(docs, 'The daemon over each run'));
  }
  if (written.length === 0) throw new Error('nothing to plot: no measurement in those files has a window or samples');
  console.error(`plot: wrote ${written.join(', ')}`);
}

runMain('plot', main);
