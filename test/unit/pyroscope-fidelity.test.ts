/**
 * What Pyroscope stores is what the operator meant: names, one memory (block,
 * mutex) series per target, the ingestion window and restarts, each checked against the
 * fake, which refuses what Pyroscope's distributor refuses.
 */
import assert from 'node:assert/strict';
import {createServer} from 'node:http';
import type {AddressInfo} from 'node:net';
import {join} from 'node:path';
import {test} from 'node:test';
import {gunzipSync, gzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {parseConfig} from '../../src/config/index.js';
import {Daemon} from '../../src/daemon.js';
import {silentLogger} from '../../src/log.js';
import {createMetrics} from '../../src/metrics.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {DeltaStore} from '../../src/profiles/delta.js';
import {createPyroscopeRepository} from '../../src/repositories/pyroscope.js';
import type {PyroscopeRepository} from '../../src/repositories/pyroscope.js';
import type {SendResult} from '../../src/repositories/repository.js';
import {tempDir} from '../helpers/delivery.js';
import {metricSum} from '../helpers/metrics.js';
import {stackKey, valuesByStack} from '../helpers/pprof-stacks.js';
import {fixtureProfile, scrapedProfile} from '../helpers/profiles.js';
import {pyroscopeConfig, startPyroscopeFake} from '../helpers/pyroscope-fake.js';
import type {ReceivedSeries} from '../helpers/pyroscope-fake.js';
import {waitUntil} from '../helpers/wait.js';

const CUMULATIVE = new Set(['alloc_objects', 'alloc_space', 'contentions', 'delay']);

/** A fixture as a process would serve it at `timeMs`, its cumulative values grown by `grow` (by sample index); `keep` picks samples. */
function served(file: string, timeMs: number, grow: (i: number) => number = () => 0, keep: (i: number) => boolean = () => true): Buffer {
  const p = fixtureProfile(file);
  p.timeNanos = BigInt(timeMs) * 1_000_000n;
  const cumulative = p.sampleType.flatMap((t, i) => (CUMULATIVE.has(p.stringTable.strings[Number(t.type)] ?? '') ? [i] : []));
  p.sample.forEach((s, i) => {
    for (const c of cumulative) s.value[c] = Number(s.value[c]) + grow(i);
  });
  p.sample = p.sample.filter((_, i) => keep(i));
  return gzipSync(p.encode());
}

function scraped(type: string, data: Buffer, timeMs: number, over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return scrapedProfile({targetId: 'abc', type, time: timeMs, data, ...over});
}

const config = pyroscopeConfig;

/** What the queue does with one profile: prepare it once, then send what it gives. */
async function deliver(repo: PyroscopeRepository, profile: ScrapedProfile): Promise<SendResult> {
  const prepared = await repo.prepare(profile);
  if (prepared.status === 'skipped') return prepared;
  return repo.send(prepared.profile, AbortSignal.timeout(5000));
}

/** [start, end] in ns of what a received profile covers: a delta covers its duration. */
const windowOf = (s: ReceivedSeries): [bigint, bigint] => [BigInt(s.profile.timeNanos) - BigInt(s.profile.durationNanos), BigInt(s.profile.timeNanos)];

void test('a custom type is filed under its configured name, whatever its samples look like; Go\'s own types keep Pyroscope\'s names', async () => {
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', config(fake.url));
  const now = Date.now();
  try {
    // fgprof serves CPU-like samples (samples/count, cpu/nanoseconds here)
    for (const type of ['fgprof', 'cpu', 'fg-prof.wall']) assert.deepEqual(await deliver(repo, scraped(type, served('cpu.pb.gz', now), now)), {status: 'ok'}, type);
    const got = await fake.waitFor(3);
    assert.deepEqual(got.map((s) => s.label('__name__')), ['fgprof', 'process_cpu', 'fg-prof.wall']);
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('memory is counted once: with heap configured, allocs is never sent, even when its deltas come first (a fresh start); without heap, allocs is', async () => {
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', config(fake.url));
  const t0 = Date.now() - 30_000;
  const t1 = t0 + 15_000;
  const both = ['cpu', 'heap', 'allocs'];
  try {
    // the daemon just started: this target's allocs scrapes are prepared before any of its heap scrapes
    await deliver(repo, scraped('allocs', served('allocs.pb.gz', t0), t0, {targetTypes: both}));
    await deliver(repo, scraped('allocs', served('allocs.pb.gz', t1, (i) => i + 1), t1, {targetTypes: both}));
    await deliver(repo, scraped('heap', served('heap.pb.gz', t0), t0, {targetTypes: both}));
    assert.deepEqual(await deliver(repo, scraped('heap', served('heap.pb.gz', t1, (i) => i + 1), t1, {targetTypes: both})), {status: 'ok'});
    // another target, without heap: its memory comes from allocs
    const only = {targetId: 'other', labels: {instance: '10.0.0.8:6060'}, targetTypes: ['allocs']};
    await deliver(repo, scraped('allocs', served('allocs.pb.gz', t0), t0, only));
    assert.deepEqual(await deliver(repo, scraped('allocs', served('allocs.pb.gz', t1, (i) => i + 1), t1, only)), {status: 'ok'});

    const memory = fake.received.filter((s) => s.label('__name__') === 'memory');
    const bySeries = new Map<string, ReceivedSeries[]>();
    for (const s of memory) {
      const key = JSON.stringify([...s.labels].sort());
      bySeries.set(key, [...(bySeries.get(key) ?? []), s]);
    }
    assert.equal(bySeries.size, 2, 'one memory series per target');
    for (const [series, list] of bySeries) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const [a0, a1] = windowOf(list[i]!);
          const [b0, b1] = windowOf(list[j]!);
          assert.ok(a1 <= b0 || b1 <= a0, `two memory profiles cover the same time in ${series}: counted twice`);
        }
      }
    }
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('with a godeltaprof type for memory, block or mutex, that series comes from it alone: heap, allocs, block and mutex are skipped, saying why', async () => {
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', config(fake.url));
  const t0 = Date.now() - 30_000;
  const t1 = t0 + 15_000;
  const godelta = {delta_heap: '/debug/pprof/delta_heap', delta_block: '/debug/pprof/delta_block', delta_mutex: '/debug/pprof/delta_mutex'};
  const target = {targetTypes: ['cpu', 'heap', 'allocs', 'block', 'mutex', ...Object.keys(godelta)], targetDeltaTypes: godelta};
  try {
    for (const [type, file, source] of [['heap', 'heap.pb.gz', 'delta_heap'], ['allocs', 'allocs.pb.gz', 'delta_heap'], ['block', 'block.pb.gz', 'delta_block'], ['mutex', 'mutex.pb.gz', 'delta_mutex']] as const) {
      await deliver(repo, scraped(type, served(file, t0), t0, target));
      const r = await deliver(repo, scraped(type, served(file, t1, (i) => i + 1), t1, target));
      assert.equal(r.status, 'skipped', type);
      assert.match((r as {reason: string}).reason, new RegExp(`^${type} holds the same samples as this target's ${source} profile, which Pyroscope gets`), type);
      assert.equal(repo.deltas.has(`abc\0${type}`), false, `${type}: no baseline is kept for what is never sent`);
    }
    const sent = new Map<string, Buffer>();
    for (const [type, file] of [['delta_heap', 'heap.pb.gz'], ['delta_block', 'block.pb.gz'], ['delta_mutex', 'mutex.pb.gz']] as const) {
      const data = served(file, t1);
      sent.set(type, data);
      assert.deepEqual(await deliver(repo, scraped(type, data, t1, {...target, delta: true, url: `http://10.0.0.7:6060${godelta[type]}`})), {status: 'ok'}, type);
    }
    const byName = (name: string): ReceivedSeries[] => fake.received.filter((s) => s.label('__name__') === name);
    assert.deepEqual(byName('memory').map((s) => s.raw), [sent.get('delta_heap')], 'one memory series, from delta_heap');
    assert.deepEqual(byName('block').map((s) => s.raw), [sent.get('delta_block')]);
    assert.deepEqual(byName('mutex').map((s) => s.raw), [sent.get('delta_mutex')]);
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('a godeltaprof type that neither its name nor its path marks as heap is not the memory source: a target with heap sends heap, that type is skipped', async () => {
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', config(fake.url));
  const t0 = Date.now() - 30_000;
  const t1 = t0 + 15_000;
  const target = {targetTypes: ['heap', 'gdp'], targetDeltaTypes: {gdp: '/debug/pprof/gdp'}};
  try {
    const other = await deliver(repo, scraped('gdp', served('heap.pb.gz', t1), t1, {...target, delta: true, url: 'http://10.0.0.7:6060/debug/pprof/gdp'}));
    assert.equal(other.status, 'skipped');
    assert.match((other as {reason: string}).reason, /^gdp holds the same samples as this target's heap profile/);
    await deliver(repo, scraped('heap', served('heap.pb.gz', t0), t0, target));
    assert.deepEqual(await deliver(repo, scraped('heap', served('heap.pb.gz', t1, (i) => i + 1), t1, target)), {status: 'ok'});
    assert.equal(fake.received.filter((s) => s.label('__name__') === 'memory').length, 1);
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('the daemon scraping heap and godeltaprof\'s delta_heap of a target sends Pyroscope\'s memory from delta_heap only', {timeout: 60_000}, async () => {
  let heapServed = 0;
  const target = createServer((req, res) => {
    const delta = req.url?.startsWith('/debug/pprof/delta_heap') === true;
    const n = delta ? 0 : ++heapServed;
    const p = Profile.decode(gunzipSync(served('heap.pb.gz', Date.now(), (i) => n * (i + 1))));
    if (delta) p.comment = [p.stringTable.dedup('godeltaprof')];
    res.writeHead(200, {'content-type': 'application/octet-stream'});
    res.end(gzipSync(p.encode()));
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(target.address() as AddressInfo).port}`;
  const fake = await startPyroscopeFake();
  const {dir, cleanup} = await tempDir('pprof-godeltaprof-');
  const metrics = createMetrics({defaultMetrics: false});
  const daemon = new Daemon({logger: silentLogger(), metrics});
  try {
    await daemon.apply(
      parseConfig(
        `
scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
  delta_heap: {path: /debug/pprof/delta_heap, delta: true}
discovery:
  - static: {service: api, targets: ["${address}"]}
repositories:
  - pyroscope: {url: "${fake.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`,
        'test.yaml',
        {baseDir: dir},
      ),
    );
    // every heap profile is skipped (the first would only set a baseline anyway)
    await waitUntil('four heap profiles handled', async () => (await metricSum(metrics.profilesSent, {repository: 'pyroscope', result: 'skipped'})) >= 4, {timeoutMs: 20_000});
    await fake.waitFor(3, 20_000);
    await daemon.stop({scrapeDeadlineMs: 1000, sendDeadlineMs: 1000});
    const memory = fake.received.filter((s) => s.label('__name__') === 'memory');
    assert.ok(memory.length >= 3);
    for (const s of memory) assert.ok(s.profile.comment.some((c) => s.profile.stringTable.strings[Number(c)] === 'godeltaprof'), 'a memory profile that is not delta_heap\'s: memory counted twice');
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    target.closeAllConnections();
    await new Promise<void>((resolve) => target.close(() => resolve()));
    await fake.close();
    await cleanup();
  }
});

void test('a queued profile outside Pyroscope\'s ingestion window is dropped before sending, counted as outside_ingestion_window; the window is configurable', async () => {
  const fake = await startPyroscopeFake();
  const metrics = createMetrics({defaultMetrics: false});
  const repo = await createPyroscopeRepository('p', config(fake.url), {metrics});
  const now = Date.now();
  try {
    const old = now - 2 * 3_600_000;
    const r = await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', old), old));
    assert.equal(r.status, 'skipped');
    assert.match((r as {reason: string}).reason, /^outside_ingestion_window: taken 2h.* ago, and Pyroscope refuses profiles older than reject_older_than \(1h\)/);
    const ahead = now + 20 * 60_000;
    const f = await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', ahead), ahead));
    assert.match((f as {reason: string}).reason, /^outside_ingestion_window: dated 19m.* ahead, and Pyroscope refuses profiles further ahead than reject_newer_than \(10m\)/);
    assert.equal(fake.requests(), 0, 'nothing was sent to a certain refusal');
    assert.equal(await metricSum(metrics.queueDropped, {repository: 'p', reason: 'outside_ingestion_window'}), 2);
    assert.deepEqual(await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', now - 60_000), now - 60_000)), {status: 'ok'});
  } finally {
    await repo.close();
    await fake.close();
  }

  // a server with a wider window: reject_older_than says so
  const wide = await startPyroscopeFake({rejectOlderThanMs: 3 * 3_600_000});
  const repo3h = await createPyroscopeRepository('p', config(wide.url, {reject_older_than: 3 * 3_600_000}));
  try {
    const old = now - 2 * 3_600_000;
    assert.deepEqual(await deliver(repo3h, scraped('goroutine', served('goroutine.pb.gz', old), old)), {status: 'ok'});
    await wide.waitFor(1);
  } finally {
    await repo3h.close();
    await wide.close();
  }
});

void test('a restart that only shows as missing stacks: the new process\'s larger values are not diffed against the dead one', async () => {
  const fake = await startPyroscopeFake();
  const metrics = createMetrics({defaultMetrics: false});
  const repo = await createPyroscopeRepository('p', config(fake.url), {metrics});
  const t = Date.now() - 60_000;
  try {
    assert.equal((await deliver(repo, scraped('block', served('block.pb.gz', t), t))).status, 'skipped');
    assert.deepEqual(await deliver(repo, scraped('block', served('block.pb.gz', t + 10_000, () => 3), t + 10_000)), {status: 'ok'});
    // the process restarted: it has met half of the old stacks so far, each more often than the old process had
    const half = (i: number): boolean => i % 2 === 0;
    const restarted = await deliver(repo, scraped('block', served('block.pb.gz', t + 20_000, () => 1e9, half), t + 20_000));
    assert.equal(restarted.status, 'skipped');
    assert.match((restarted as {reason: string}).reason, /restarted.*new baseline/);
    assert.equal(await metricSum(metrics.deltaResets, {repository: 'p', reason: 'restart'}), 1);
    assert.deepEqual(await deliver(repo, scraped('block', served('block.pb.gz', t + 30_000, () => 1e9 + 5, half), t + 30_000)), {status: 'ok'});

    const got = await fake.waitFor(2);
    const last = got[1]!.profile;
    assert.equal(Number(last.durationNanos), 10e9, 'the delta covers the new process only');
    const rows = valuesByStack(last);
    assert.ok(rows.size > 0);
    const per = new Map<string, number>();
    last.sample.forEach((_, i) => per.set(stackKey(last, i), (per.get(stackKey(last, i)) ?? 0) + 1));
    for (const [stack, row] of rows) assert.deepEqual(row, [5, 5].map((v) => v * per.get(stack)!), stack);
  } finally {
    await repo.close();
    await fake.close();
  }
});

/** The goroutine fixture at `timeMs` with `samples` samples. */
function manySamples(samples: number, timeMs: number): Buffer {
  const p = Profile.decode(gunzipSync(served('goroutine.pb.gz', timeMs)));
  const one = p.sample;
  p.sample = Array.from({length: samples}, (_, i) => one[i % one.length]!);
  return gzipSync(p.encode());
}

void test('Pyroscope\'s limits are checked before sending: uncompressed size and samples refuse a profile for good; a target\'s labels that can never fit skip its profiles; each configurable', async () => {
  const now = Date.now();
  const labels = Object.fromEntries(Array.from({length: 28}, (_, i) => [`l${String(i).padStart(2, '0')}`, 'v']));
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', config(fake.url));
  try {
    // the target's own labels never fit: skipped without a word (the target builder said so once)
    const wide = await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', now), now, {labels}));
    assert.equal(wide.status, 'skipped');
    assert.match((wide as {reason: string}).reason, /^target_labels: the series has 31 label names .* Pyroscope allows 30 \(max_label_names_per_series\): drop target labels \(1 too many\)/);
    const many = await deliver(repo, scraped('goroutine', manySamples(16_001, now), now));
    assert.equal(many.status, 'permanent');
    assert.match((many as {error: string}).error, /16001 samples and Pyroscope allows 16000 \(max_profile_stacktrace_samples\)/);
    const long = await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', now), now, {labels: {pod: 'x'.repeat(2049)}}));
    assert.equal(long.status, 'skipped');
    assert.match((long as {reason: string}).reason, /label pod has a value longer than the 2048 bytes Pyroscope allows \(max_label_value_length\)/);
    assert.equal(fake.requests(), 0, 'nothing was sent to a certain refusal');
    assert.deepEqual(await deliver(repo, scraped('goroutine', manySamples(16_000, now), now, {labels: Object.fromEntries(Object.entries(labels).slice(1))})), {status: 'ok'});
  } finally {
    await repo.close();
    await fake.close();
  }

  // a server with other limits, and the repository told so
  const other = await startPyroscopeFake({maxLabelNamesPerSeries: 40, maxProfileStacktraceSamples: 20_000, maxProfileSizeBytes: 4096});
  const tuned = await createPyroscopeRepository('p', config(other.url, {max_label_names_per_series: 40, max_profile_stacktrace_samples: 20_000, max_profile_size: 4096}));
  try {
    const big = await deliver(tuned, scraped('goroutine', manySamples(20_000, now), now, {labels}));
    assert.equal(big.status, 'permanent');
    assert.match((big as {error: string}).error, /uncompressed and Pyroscope allows 4KiB \(max_profile_size\)/);
    assert.equal(other.requests(), 0);
    const p = Profile.decode(gunzipSync(served('goroutine.pb.gz', now)));
    p.sample = p.sample.slice(0, 1);
    p.location = p.location.filter((l) => p.sample[0]!.locationId.map(Number).includes(Number(l.id)));
    const small = gzipSync(p.encode());
    assert.deepEqual(await deliver(tuned, scraped('goroutine', small, now, {labels})), {status: 'ok'});
  } finally {
    await tuned.close();
    await other.close();
  }
});

void test('label names Pyroscope takes go unchanged; two names that Pyroscope would make one stay two', async () => {
  // label sanitisation on: the stricter of Pyroscope's two settings
  const fake = await startPyroscopeFake({labelSanitization: true});
  const repo = await createPyroscopeRepository('p', config(fake.url));
  const now = Date.now();
  try {
    const labels = {__meta_zone: 'eu-1', 'a.b': 'one', a_b: 'two', instance: '10.0.0.7:6060'};
    assert.deepEqual(await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', now), now, {labels})), {status: 'ok'});
    const [got] = await fake.waitFor(1);
    assert.equal(got!.label('__meta_zone'), 'eu-1', 'Pyroscope takes a name starting with __');
    assert.equal(got!.label('a_b'), 'one');
    assert.equal(got!.label('a_b_2'), 'two');
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('the ingestion window is checked on the profile\'s own time, as Pyroscope checks it, even when the daemon files the profile by its scrape time', async () => {
  const fake = await startPyroscopeFake();
  const metrics = createMetrics({defaultMetrics: false});
  const repo = await createPyroscopeRepository('p', config(fake.url), {metrics});
  const now = Date.now();
  try {
    // a target whose clock is two hours behind: the daemon dates the profile by the scrape
    const r = await deliver(repo, scraped('goroutine', served('goroutine.pb.gz', now - 2 * 3_600_000), now));
    assert.equal(r.status, 'skipped');
    assert.match((r as {reason: string}).reason, /^outside_ingestion_window: taken 2h/);
    assert.equal(fake.requests(), 0);
    assert.equal(await metricSum(metrics.queueDropped, {repository: 'p', reason: 'outside_ingestion_window'}), 1);
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('baselines forgotten for lack of memory are counted, from 0, per repository', async () => {
  const fake = await startPyroscopeFake();
  const metrics = createMetrics({defaultMetrics: false});
  // room for one block baseline: the second series pushes the first out
  const probe = new DeltaStore();
  probe.compute('a', served('block.pb.gz', Date.now()), Date.now());
  const room = 1.5 * probe.bytes;
  const repo = await createPyroscopeRepository('p', config(fake.url), {metrics, deltaBaselines: () => new DeltaStore({maxBytes: room})});
  const t = Date.now() - 60_000;
  try {
    assert.equal(await metricSum(metrics.deltaEvictions, {repository: 'p'}), 0, 'the series is there before any eviction');
    await deliver(repo, scraped('block', served('block.pb.gz', t), t, {targetId: 'a'}));
    assert.equal(await metricSum(metrics.deltaEvictions, {repository: 'p'}), 0);
    await deliver(repo, scraped('block', served('block.pb.gz', t), t, {targetId: 'b'}));
    assert.equal(await metricSum(metrics.deltaEvictions, {repository: 'p'}), 1);
  } finally {
    await repo.close();
    await fake.close();
  }
});
