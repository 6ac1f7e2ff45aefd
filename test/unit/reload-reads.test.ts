import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { LoadedConfig } from '../../src/config/index.js';
import type { ApplyReport } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { Reloader } from '../../src/reload.js';
import { captureLogger } from '../helpers/log.js';
import { waitUntil } from '../helpers/wait.js';

const REPORT: ApplyReport = {
  providers: { started: 0, stopped: 0, kept: 1 },
  repositories: { added: [], removed: [], swapped: [], kept: ['directory'] },
  targets: { added: 0, removed: 0, kept: 1 },
};

const config = (service: string): string => `discovery:\n  - static: {service: ${service}, targets: ["127.0.0.1:6060"]}\nrepositories:\n  - directory: {path: ./profiles}\n`;

/** Counts the opens and whole-file reads of `file` by anything in this process, through node:fs/promises. */
function countReads(file: string): { reads: () => number; restore: () => void } {
  let reads = 0;
  const target = resolve(file);
  const original = { open: fsp.open, readFile: fsp.readFile };
  const counting = <F>(fn: F): F =>
    ((path: unknown, ...rest: unknown[]) => {
      if (typeof path === 'string' && resolve(path) === target) reads++;
      return (fn as (...a: unknown[]) => unknown)(path, ...rest);
    }) as unknown as F;
  fsp.open = counting(original.open);
  fsp.readFile = counting(original.readFile);
  syncBuiltinESMExports();
  return {
    reads: () => reads,
    restore: () => {
      fsp.open = original.open;
      fsp.readFile = original.readFile;
      syncBuiltinESMExports();
    },
  };
}

void test('every reload reads the config file once, whatever triggered it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-reads-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, config('one'));
  const applied: LoadedConfig[] = [];
  const daemon = { apply: (loaded: LoadedConfig) => Promise.resolve((applied.push(loaded), REPORT)) };
  const counter = countReads(file);
  const reloader = new Reloader({ daemon, path: file, logger: captureLogger().logger, metrics: createMetrics({ defaultMetrics: false }) });
  const watcher = reloader.watch({ debounceMs: 50 });
  try {
    assert.equal((await reloader.reload('start')).status, 'applied');
    assert.equal(counter.reads(), 1, 'start');
    assert.equal((await reloader.reload('signal')).status, 'applied');
    assert.equal(counter.reads(), 2, 'SIGHUP');
    assert.equal((await reloader.reload('http')).status, 'applied');
    assert.equal(counter.reads(), 3, 'POST /-/reload');
    await writeFile(join(dir, '.next'), config('two'));
    await rename(join(dir, '.next'), file);
    await waitUntil('the changed file applied', () => applied.length === 4);
    await reloader.close();
    assert.equal(counter.reads(), 4, 'a change to the file');
  } finally {
    watcher.close();
    counter.restore();
    await rm(dir, { recursive: true, force: true });
  }
});
