/**
 * The delta stage's baselines on disk (src/delivery/baselines.ts): deltas go
 * on across a restart of the daemon, whatever is on disk after a crash is no
 * baseline rather than a wrong delta or a crash, the disk refusing a write
 * never diffs against an older baseline, and idle series are swept.
 */
import assert from 'node:assert/strict';
import fs, {existsSync} from 'node:fs';
import {mkdir, readdir, readFile, stat, utimes, writeFile} from 'node:fs/promises';
import {syncBuiltinESMExports} from 'node:module';
import {join} from 'node:path';
import {test} from 'node:test';
import {gunzipSync, gzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {DEFAULT_PROFILE_LIMITS, parseConfig} from '../../src/config/index.js';
import {BaselineFiles, baselineFileOf, baselinesDir, decodeBaseline, encodeBaseline} from '../../src/delivery/baselines.js';
import {ScrapesInFlight} from '../../src/delivery/order.js';
import {Repositories} from '../../src/delivery/repositories.js';
import {silentLogger} from '../../src/log.js';
import {createMetrics} from '../../src/metrics.js';
import {deltaOf} from '../../src/profiles/delta.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {createPyroscopeRepository} from '../../src/repositories/pyroscope.js';
import {tempDir} from '../helpers/delivery.js';
import {captureLogger} from '../helpers/log.js';
import {fixtureProfile, scrapedProfile} from '../helpers/profiles.js';
import {pyroscopeConfig, startPyroscopeFake} from '../helpers/pyroscope-fake.js';
import {valuesByStack} from '../helpers/pprof-stacks.js';
import {waitUntil} from '../helpers/wait.js';

const NOW = Date.now();

/** The allocs fixture as scraped at `timeMs`, each sample's alloc_objects and alloc_space grown by `grow`. */
function allocs(timeMs: number, grow = 0): Buffer {
  const p = fixtureProfile('allocs');
  p.timeNanos = BigInt(timeMs) * 1_000_000n;
  for (const s of p.sample) s.value = s.value.map((v, i) => (i < 2 ? Number(v) + grow : Number(v)));
  return gzipSync(p.encode());
}

function profile(timeMs: number, grow = 0, over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return scrapedProfile({targetId: 't1', service: 'svc', type: 'allocs', labels: {instance: '10.0.0.7:6060'}, time: timeMs, sampleCount: 1, data: allocs(timeMs, grow), ...over});
}

const SERIES = 't1\0allocs';

function files(dir: string): BaselineFiles {
  return new BaselineFiles(dir, {repository: 'p', idleMs: 3_600_000});
}

void test('a daemon restarted on the same state_dir sends a delta for the next profile of a series, not a first scrape', async () => {
  const fake = await startPyroscopeFake();
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  const yaml = `repositories:\n  - pyroscope: {url: "${fake.url}"}\nstate_dir: ${JSON.stringify(join(dir, 'state'))}\n`;
  const config = parseConfig(yaml, 'test.yaml', {baseDir: dir, env: {}}).config;
  const deps = (): ConstructorParameters<typeof Repositories>[0] => ({logger: silentLogger(), metrics: createMetrics({defaultMetrics: false}), scrapes: new ScrapesInFlight()});
  const file = join(baselinesDir(config.state_dir, 'pyroscope'), baselineFileOf(SERIES));
  try {
    const first = new Repositories(deps());
    await first.apply(config);
    await first.submit(profile(NOW - 10_000));
    await waitUntil('the first profile set the baseline on disk', () => existsSync(file));
    await first.close(2000);
    assert.equal(fake.received.length, 0, 'the first profile only set the baseline');

    const second = new Repositories(deps());
    try {
      await second.apply(config);
      await second.submit(profile(NOW, 5));
      const [got] = await fake.waitFor(1);
      const d = got!.profile;
      assert.equal(BigInt(d.timeNanos), BigInt(NOW) * 1_000_000n);
      assert.equal(Number(d.durationNanos), 10_000 * 1e6, 'the delta covers the time since the profile the first daemon prepared');
      for (const row of valuesByStack(d).values()) assert.deepEqual(row.slice(0, 2), [5, 5]);
      assert.equal(valuesByStack(d).size, fixtureProfile('allocs').sample.length);
    } finally {
      await second.close(2000);
    }
  } finally {
    await fake.close();
    await cleanup();
  }
});

void test('a reload that swaps the repository keeps the same baselines', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const made: BaselineFiles[] = [];
    const deltaBaselines = (): BaselineFiles => {
      const b = files(dir);
      made.push(b);
      return b;
    };
    const one = await createPyroscopeRepository('p', pyroscopeConfig('http://127.0.0.1:9'), {deltaBaselines});
    assert.equal((await one.prepare(profile(NOW - 10_000))).status, 'skipped');
    const two = await createPyroscopeRepository('p', pyroscopeConfig('http://127.0.0.1:9', {timeout: 1000}), {deltaBaselines, previous: one});
    assert.equal(two.deltas, one.deltas);
    assert.equal(made.length, 1, 'no second store over the same folder');
    assert.equal((await two.prepare(profile(NOW, 1))).status, 'send');
    await Promise.all([one.close(), two.close()]);
  } finally {
    await cleanup();
  }
});

void test('a profile prepared again after a crash (its ack lost) only resets the baseline; the next one is diffed against it', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const before = await createPyroscopeRepository('p', pyroscopeConfig('http://127.0.0.1:9'), {deltaBaselines: () => files(dir)});
    await before.prepare(profile(NOW - 20_000));
    assert.equal((await before.prepare(profile(NOW - 10_000, 1))).status, 'send');
    // the process dies before the queue noted that item finished: the next start prepares it again
    const after = await createPyroscopeRepository('p', pyroscopeConfig('http://127.0.0.1:9'), {deltaBaselines: () => files(dir)});
    const again = await after.prepare(profile(NOW - 10_000, 1));
    assert.equal(again.status, 'skipped', 'not a second delta of the same interval');
    const next = await after.prepare(profile(NOW, 3));
    assert.equal(next.status, 'send');
    if (next.status === 'send') {
      assert.equal(next.profile.durationMs, 10_000, 'diffed against the last prepared profile');
      const d = Profile.decode(gunzipSync(next.profile.data));
      for (const s of d.sample) assert.deepEqual(s.value.slice(0, 2).map(Number), [2, 2]);
    }
    await Promise.all([before.close(), after.close()]);
  } finally {
    await cleanup();
  }
});

void test('what a crash or a hostile disk leaves is no baseline: the profile sets one, with a line in the log, and the next is a delta', async () => {
  const good = encodeBaseline(SERIES, deltaOf(undefined, allocs(NOW - 10_000), 0).baseline!);
  const unsorted = (() => {
    const b = deltaOf(undefined, allocs(NOW - 10_000), 0).baseline!;
    return encodeBaseline(SERIES, {...b, keys: b.keys.slice().reverse()});
  })();
  const cases: [string, (path: string) => Promise<void>][] = [
    ['empty (a power cut)', (p) => writeFile(p, '')],
    ['truncated', (p) => writeFile(p, good.subarray(0, good.length - 5))],
    ['a flipped bit', (p) => writeFile(p, Buffer.from(good).fill(good[60]! ^ 1, 60, 61))],
    ['another file format', (p) => writeFile(p, gzipSync('not a baseline'))],
    ['another series under this name', (p) => writeFile(p, encodeBaseline('t2\0allocs', deltaOf(undefined, allocs(NOW - 10_000), 0).baseline!))],
    ['keys out of order, with a good checksum', (p) => writeFile(p, unsorted)],
    ['a folder', (p) => mkdir(p)],
  ];
  for (const [what, damage] of cases) {
    const {dir, cleanup} = await tempDir('pprof-baselines-');
    try {
      const log = captureLogger();
      const store = new BaselineFiles(dir, {repository: 'p', idleMs: 3_600_000, logger: log.logger});
      await damage(join(dir, baselineFileOf(SERIES)));
      assert.deepEqual(await store.compute(SERIES, allocs(NOW - 5_000, 1), 0), {kind: 'baseline', reason: 'first'}, what);
      assert.equal(log.find(/delta baseline file/).length, 1, `${what}: logged`);
      if (what === 'a folder') continue;
      const r = await store.compute(SERIES, allocs(NOW, 4), 0);
      assert.equal(r.kind === 'delta' && r.durationMs, 5_000, `${what}: the next profile is diffed against the one that replaced it`);
    } finally {
      await cleanup();
    }
  }
});

void test('a baseline file larger than any profile within the scrape limits makes is refused unread', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const log = captureLogger();
    const store = new BaselineFiles(dir, {repository: 'p', idleMs: 3_600_000, logger: log.logger});
    const limits = {...DEFAULT_PROFILE_LIMITS, max_samples: 1000, max_sample_types: 4};
    await writeFile(join(dir, baselineFileOf(SERIES)), Buffer.alloc(1024 ** 2));
    assert.deepEqual(await store.compute(SERIES, allocs(NOW), 0, NOW, limits), {kind: 'baseline', reason: 'first'});
    assert.match(String(log.find(/larger than any profile/)[0]?.['msg']), /1048576 bytes/);
  } finally {
    await cleanup();
  }
});

void test('a profile that is not pprof leaves the baseline on disk as it was', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const store = files(dir);
    await store.compute(SERIES, allocs(NOW - 10_000), 0);
    const path = join(dir, baselineFileOf(SERIES));
    const kept = await readFile(path);
    await assert.rejects(store.compute(SERIES, Buffer.from('garbage'), 0), {name: 'ProfileFormatError'});
    assert.deepEqual(await readFile(path), kept);
    const r = await store.compute(SERIES, allocs(NOW, 2), 0);
    assert.equal(r.kind === 'delta' && r.durationMs, 10_000);
  } finally {
    await cleanup();
  }
});

void test('a baseline the disk will not take is held in memory, and the older file is never diffed against', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const log = captureLogger();
    const store = new BaselineFiles(dir, {repository: 'p', idleMs: 3_600_000, logger: log.logger});
    await store.compute(SERIES, allocs(NOW - 20_000), 0);
    // the disk is full: the baseline of the next profile stays in memory
    const path = join(dir, baselineFileOf(SERIES));
    const writeSync = fs.writeSync;
    fs.writeSync = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC'});
    };
    syncBuiltinESMExports();
    let r1;
    try {
      r1 = await store.compute(SERIES, allocs(NOW - 10_000, 1), 0);
    } finally {
      fs.writeSync = writeSync;
      syncBuiltinESMExports();
    }
    assert.equal(r1.kind === 'delta' && r1.durationMs, 10_000);
    assert.equal(log.find(/could not write a delta baseline/).length, 1);
    assert.equal(existsSync(path), false, 'the older baseline is gone from disk');
    assert.ok(store.bytes > 0 && store.has(SERIES));
    const r2 = await store.compute(SERIES, allocs(NOW, 3), 0);
    assert.equal(r2.kind === 'delta' && r2.durationMs, 10_000, 'diffed against the baseline in memory, not the one before it');
    assert.equal(store.evictions, 0);
  } finally {
    await cleanup();
  }
});

void test('the sweep removes baselines idle past idleMs and what a crash left mid-write, and keeps the rest', async () => {
  const {dir, cleanup} = await tempDir('pprof-baselines-');
  try {
    const store = files(dir);
    for (const s of ['a\0allocs', 'b\0allocs', 'c\0block']) await store.compute(s, allocs(NOW), 0);
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(dir, baselineFileOf('b\0allocs')), old, old);
    await writeFile(join(dir, `${baselineFileOf('d\0allocs')}.tmp`), 'half');
    await writeFile(join(dir, 'README'), 'not ours');
    assert.equal(await store.sweep(), 1);
    assert.deepEqual((await readdir(dir)).sort(), ['README', baselineFileOf('a\0allocs'), baselineFileOf('c\0block')].sort());
    assert.equal(store.size, 2);
    assert.equal(store.has('b\0allocs'), false);
    assert.ok((await stat(join(dir, baselineFileOf('a\0allocs')))).size > 0);
  } finally {
    await cleanup();
  }
});

void test('a baseline file reads back as it was written', () => {
  const b = deltaOf(undefined, allocs(NOW), 0).baseline!;
  const back = decodeBaseline(encodeBaseline(SERIES, b), SERIES);
  assert.deepEqual(back, b);
});
