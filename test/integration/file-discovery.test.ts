/**
 * The file provider on real files: a glob that grows, an atomic rename, a
 * partial write, a deletion, files too big or too long. Cases follow
 * Prometheus's discovery/file tests (file_test.go): valid JSON and YAML,
 * an invalid file keeping the last good targets, a removed file, a rename.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ProviderRunner } from '../../src/discovery/index.js';
import { DiscoveryError } from '../../src/discovery/provider.js';
import { createFileProvider } from '../../src/discovery/providers/file.js';
import { createMetrics } from '../../src/metrics.js';
import type { Discovered } from '../../src/targets/index.js';
import { captureLogger } from '../helpers/log.js';
import { metricSum } from '../helpers/metrics.js';
import { config } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'file-sd-'));
  dirs.push(d);
  return d;
}

function fileConfig(files: string[], extra = '') {
  const c = config(`discovery:\n  - file: {files: ${JSON.stringify(files)}${extra}}`);
  const block = c.discovery[0]?.file;
  assert.ok(block);
  return block;
}

const addresses = (found: readonly Discovered[] | undefined): string[] => (found ?? []).map((d) => d.address ?? '?');

describe('reading file_sd files', () => {
  test('JSON and YAML files of a glob, with labels, pprof.* labels and __meta_filepath', async () => {
    const dir = await folder();
    await writeFile(join(dir, 'a.json'), JSON.stringify([{ targets: ['10.0.0.1:6060', '10.0.0.2'], labels: { team: 'core', 'pprof.port': '7070', __tmp: 'x' } }]));
    await writeFile(join(dir, 'b.yml'), '- targets: ["10.0.0.3:6060"]\n  labels:\n    env: prod\n');
    await writeFile(join(dir, 'c.txt'), 'not a target file');
    const { logger } = captureLogger();
    const provider = createFileProvider(fileConfig([join(dir, '*.json'), join(dir, '*.yml'), join(dir, '*.txt.json')]), 0, { logger });
    const found = await provider.refresh(AbortSignal.timeout(5000));
    assert.deepEqual(addresses(found), ['10.0.0.1:6060', '10.0.0.2', '10.0.0.3:6060']);
    assert.deepEqual(found[0]?.directives, { 'pprof.label.team': 'core', 'pprof.port': '7070' });
    assert.deepEqual(found[0]?.meta, { __tmp: 'x', __meta_filepath: join(dir, 'a.json') });
    assert.equal(found[2]?.meta?.['__meta_filepath'], join(dir, 'b.yml'));
  });

  test('an empty list, an empty file and an empty group are valid', async () => {
    const dir = await folder();
    await writeFile(join(dir, 'a.json'), '[]');
    await writeFile(join(dir, 'b.yaml'), '');
    await writeFile(join(dir, 'c.json'), '[{"labels": {"a": "b"}}]');
    const provider = createFileProvider(fileConfig([join(dir, '*.json'), join(dir, '*.yaml')]), 0, { logger: captureLogger().logger });
    assert.deepEqual(await provider.refresh(AbortSignal.timeout(5000)), []);
  });

  const invalid: [string, string, RegExp][] = [
    ['half.json', '[{"targets": ["10.0.0.1:6060"],\n  "labels": {"a": ', /half\.json:2: not valid JSON/],
    ['bad.yml', '- targets: [10.0.0.1\n  labels: {', /bad\.yml:\d+: not valid YAML/],
    ['map.json', '{"targets": []}', /map\.json: expected a list of target groups/],
    ['key.yml', '- targets: [a:1]\n  lables: {a: b}\n', /key\.yml:2: groups\[0\]\.lables: unknown key "lables"/],
    ['name.json', '[\n {"targets": ["a:1"],\n  "labels": {"bad-name": "x"}}]', /name\.json:3: groups\[0\]\.labels\.bad-name: label name "bad-name" is not valid/],
    ['target.json', '[{"targets": [7]}]', /target\.json:1: groups\[0\]\.targets\[0\]: expected an address/],
  ];
  for (const [name, text, error] of invalid) {
    test(`an invalid file says where: ${name}`, async () => {
      const dir = await folder();
      await writeFile(join(dir, name), text);
      const provider = createFileProvider(fileConfig([join(dir, name)]), 0, { logger: captureLogger().logger });
      await assert.rejects(provider.refresh(AbortSignal.timeout(5000)), (err: unknown) => {
        assert.ok(err instanceof DiscoveryError);
        assert.match(err.message, error);
        assert.match(err.message, /^discovery\[0\]\.file: /);
        return true;
      });
    });
  }

  test('a file over max_file_size and a list over max_targets are refused whole, with the reason', async () => {
    const dir = await folder();
    // ten MB: a runaway generator
    const big = JSON.stringify([{ targets: ['10.0.0.1:6060'], labels: { note: 'x'.repeat(10_500_000) } }]);
    await writeFile(join(dir, 'big.json'), big);
    const many = JSON.stringify([{ targets: Array.from({ length: 100_000 }, (_, i) => `h${i}:1`) }]);
    await writeFile(join(dir, 'many.json'), many);
    const provider = createFileProvider(fileConfig([join(dir, '*.json')]), 0, { logger: captureLogger().logger });
    await assert.rejects(provider.refresh(AbortSignal.timeout(5000)), (err: unknown) => {
      assert.ok(err instanceof DiscoveryError);
      assert.match(err.message, /big\.json: 1[0-9.]+ MiB is over max_file_size \(8 MiB\): split the list/);
      assert.match(err.message, /many\.json: groups\[0\]\.targets\[25000\]: more than 25000 targets/);
      assert.deepEqual(err.answer, []);
      return true;
    });
  });
});

describe('following the files', () => {
  test('glob growing, atomic rename, partial write, delete: within a second each, the last good targets kept', async () => {
    const dir = await folder();
    await writeFile(join(dir, 'a.json'), JSON.stringify([{ targets: ['10.0.0.1:6060'] }]));
    // a long refresh: only the watch can make the changes show in time
    const provider = createFileProvider(fileConfig([join(dir, '*.json')], ', refresh: 1h'), 0, { logger: captureLogger().logger });
    const metrics = createMetrics({ defaultMetrics: false });
    const runner = new ProviderRunner(provider, { logger: captureLogger().logger, metrics, onChange: () => undefined });
    try {
      const seen = (want: string[]) => (): boolean => JSON.stringify(addresses(runner.state.found)) === JSON.stringify(want);
      await waitUntil('the first file', seen(['10.0.0.1:6060']), { timeoutMs: 5000 });
      // watches are set up asynchronously after the first refresh; write until the change shows
      const t0 = Date.now();
      await writeFile(join(dir, 'b.json'), JSON.stringify([{ targets: ['10.0.0.2:6060'] }]));
      await waitUntil('a new file of the glob', seen(['10.0.0.1:6060', '10.0.0.2:6060']), { timeoutMs: 3000 });

      let started = Date.now();
      await writeFile(join(dir, '.b.json.tmp'), JSON.stringify([{ targets: ['10.0.0.3:6060'] }]));
      await rename(join(dir, '.b.json.tmp'), join(dir, 'b.json'));
      await waitUntil('the renamed file', seen(['10.0.0.1:6060', '10.0.0.3:6060']), { timeoutMs: 3000 });
      assert.ok(Date.now() - started < 1000, `a change applies within 1 s (took ${Date.now() - started} ms)`);

      started = Date.now();
      await writeFile(join(dir, 'b.json'), '[{"targets": ["10.0.0.9:6060"');
      await waitUntil('the error of the half-written file', () => runner.state.error?.includes('b.json:1: not valid JSON'), { timeoutMs: 3000 });
      assert.deepEqual(addresses(runner.state.found), ['10.0.0.1:6060', '10.0.0.3:6060'], 'the last good targets of b.json stay');
      assert.ok((await metricSum(metrics.discoveryFailures, { provider: 'file' })) >= 1, 'counted');
      // another file changes meanwhile: that change applies, b.json's last good targets stay
      await writeFile(join(dir, 'a.json'), JSON.stringify([{ targets: ['10.0.0.4:6060'] }]));
      await waitUntil('a good file changing beside a bad one', seen(['10.0.0.4:6060', '10.0.0.3:6060']), { timeoutMs: 3000 });

      await writeFile(join(dir, 'b.json'), JSON.stringify([{ targets: ['10.0.0.5:6060'] }]));
      await waitUntil('the completed file', seen(['10.0.0.4:6060', '10.0.0.5:6060']), { timeoutMs: 3000 });
      assert.equal(runner.state.error, undefined);

      started = Date.now();
      await rm(join(dir, 'b.json'));
      await waitUntil('the deleted file\'s targets gone', seen(['10.0.0.4:6060']), { timeoutMs: 3000 });
      assert.ok(Date.now() - started < 1000, `a deletion applies within 1 s (took ${Date.now() - started} ms)`);
      assert.ok(Date.now() - t0 < 60_000);
    } finally {
      await runner.stop();
    }
  });
});
