import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { request } from 'undici';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { createTargetClient } from '../../src/http/index.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import { buildTargets } from '../../src/targets/index.js';
import { goHandlerRunning, skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { metricSum } from '../helpers/metrics.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { waitUntil } from '../helpers/wait.js';

const skip = await skipWithoutGo();
const TYPES = ['cpu', 'heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate'];

void test('every default type from a real Go target lands in a directory and in profefe', { skip, timeout: 120_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.5' });
  const profefe = await startProfefeFake();
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-go-'));
  const daemon = new Daemon({ logger: silentLogger() });
  try {
    const loaded = parseConfig(
      `
scrape: {interval: 4s, timeout: 5s, labels: {env: test}}
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 2}
  heap: {path: /debug/pprof/heap}
  allocs: {path: /debug/pprof/allocs}
  goroutine: {path: /debug/pprof/goroutine}
  block: {path: /debug/pprof/block}
  mutex: {path: /debug/pprof/mutex}
  threadcreate: {path: /debug/pprof/threadcreate}
discovery:
  - static:
      service: go-target
      labels: {team: core}
      targets: [${go.address}]
repositories:
  - directory: {path: ${dir}}
  - profefe: {url: "${profefe.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${dir}/state
`,
      'go.yaml',
      { baseDir: dir, env: {} },
    );
    await daemon.apply(loaded);

    // every type lands in the directory, as a profile pprof-format decodes, with samples
    const files = await waitUntil('a profile of every type in the directory', async () => {
      const found: Record<string, string> = {};
      for (const type of TYPES) {
        const names = await readdir(join(dir, 'go-target', type)).catch(() => []);
        const pb = names.find((n) => n.endsWith('.pb.gz'));
        if (pb) found[type] = join(dir, 'go-target', type, pb);
      }
      return Object.keys(found).length === TYPES.length ? found : undefined;
    }, { timeoutMs: 30_000 });
    for (const [type, file] of Object.entries(files)) {
      const p = Profile.decode(gunzipSync(await readFile(file)));
      assert.ok(p.sample.length > 0, `${type} has samples`);
      const sidecar = JSON.parse(await readFile(file.replace(/\.pb\.gz$/, '.json'), 'utf8'));
      assert.deepEqual(sidecar.labels, { instance: go.address, provider: 'static', env: 'test', team: 'core' });
      assert.equal(sidecar.service, 'go-target');
      assert.equal(sidecar.time, new Date(Number(BigInt(p.timeNanos) / 1_000_000n)).toISOString(), 'the time is the profile\'s own');
    }

    // profefe gets every type it knows (allocs is not one), each accepted by its rules
    const wanted = TYPES.filter((t) => t !== 'allocs');
    await waitUntil('every profefe type at the fake', () => wanted.every((t) => profefe.received.some((r) => r.type === t)), { timeoutMs: 30_000 });
    assert.deepEqual(profefe.rejected, []);
    assert.ok(!profefe.received.some((r) => (r.type as string) === 'allocs'));
    const heap = profefe.received.find((r) => r.type === 'heap');
    assert.equal(heap?.service, 'go-target');
    assert.deepEqual(Object.fromEntries(heap?.labels ?? []), { instance: go.address, provider: 'static', env: 'test', team: 'core' });

    const metrics = await daemon.metrics.registry.getSingleMetricAsString('pprof_scraper_scrapes_total');
    assert.match(metrics, /pprof_scraper_scrapes_total\{provider="static",type="cpu",result="success"\} [1-9]/);
  } finally {
    await daemon.stop();
    await profefe.close();
    await go.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

void test('a second CPU profile gets Go\'s 500 "already in use": a clear, counted failure', { skip, timeout: 60_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.6' });
  try {
    const config = parseConfig(
      `profiles: {cpu: {path: /debug/pprof/profile, seconds: 1}}\ndiscovery:\n  - static: {targets: [${go.address}]}\nrepositories:\n  - directory: {path: ./unused}\n`,
      'cpu.yaml',
      { baseDir: '.', env: {} },
    ).config;
    const [target] = buildTargets(config, [{ source: 0, provider: 'static', targets: [{ address: go.address, labels: {} }] }]).targets;
    assert.ok(target);
    const profile = target.profiles[0]!;
    // someone else is profiling this process for 3 s
    const other = request(`http://${go.address}/debug/pprof/profile?seconds=3`).then((r) => r.body.arrayBuffer());
    await waitUntil('the other CPU profile to run', () => goHandlerRunning(go.address, 'Profile'), { everyMs: 20 });
    const client = await createTargetClient({});
    const outcome = await scrapeProfile(target, profile, client, { timeout: 5000, maxProfileSize: 64 << 20, maxDecompressedSize: 256 << 20 }, AbortSignal.timeout(10_000));
    assert.equal(outcome.ok, false);
    assert.equal(outcome.ok ? '' : outcome.result, 'busy');
    assert.match(outcome.ok ? '' : outcome.reason, /^HTTP 500: ".*cpu profiling already in use.*": another CPU profile of this process is running/);
    await other;
    // once the other profile is done, it works again
    const again = await scrapeProfile(target, profile, client, { timeout: 5000, maxProfileSize: 64 << 20, maxDecompressedSize: 256 << 20 }, AbortSignal.timeout(10_000));
    assert.equal(again.ok, true);
    await client.close();
  } finally {
    await go.stop();
  }
});

void test('with concurrency 1, heap scrapes go on while a CPU profile waits out its window', { skip, timeout: 60_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.7' });
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-go-'));
  const daemon = new Daemon({ logger: silentLogger() });
  try {
    const loaded = parseConfig(
      `
scrape: {interval: 6s, timeout: 5s, concurrency: 1}
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 5}
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      targets:
        - {address: ${go.address}, service: cpu-watch, profiles: [cpu]}
        - {address: ${go.address}, service: heap-watch, profiles: [heap], interval: 1s}
repositories:
  - directory: {path: ${dir}}
state_dir: ${dir}/state
`,
      'go.yaml',
      { baseDir: dir, env: {} },
    );
    await daemon.apply(loaded);
    const successes = (type: string): Promise<number> => metricSum(daemon.metrics.scrapes, { type, result: 'success' });
    // two 5 s CPU profiles of every 6 s: a CPU profile holding the only slot would leave heap about one tick in six
    await waitUntil('two CPU profiles', async () => (await successes('cpu')) >= 2, { timeoutMs: 30_000 });
    const heap = await successes('heap');
    assert.ok(heap >= 8, `heap scrapes while CPU profiles ran: ${heap}`);
  } finally {
    await daemon.stop();
    await go.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
