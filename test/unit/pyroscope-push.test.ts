import assert from 'node:assert/strict';
import {test} from 'node:test';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {Secret} from '../../src/config/secret.js';
import {createPyroscopeRepository, pyroscopeLabelName, pyroscopeLabels} from '../../src/repositories/pyroscope.js';
import {encodePushRequest, profileId, sampleTypeNames} from '../../src/repositories/pyroscope-push.js';
import {profileNameOf} from '../../src/repositories/pyroscope-series.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {fixture, scrapedProfile, stampedFixture} from '../helpers/profiles.js';
import {checkSeries, decodePushRequest, pyroscopeConfig, startPyroscopeFake} from '../helpers/pyroscope-fake.js';

const NOW = Date.now();

function profile(type: string, file: string, over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  // a fixture taken now: Pyroscope refuses profiles older than an hour
  return scrapedProfile({targetId: 'abc', service: 'billing api', type, labels: {instance: '10.0.0.7:6060', env: 'prod'}, time: NOW, sampleCount: 3, data: stampedFixture(file, NOW), ...over});
}

const config = pyroscopeConfig;

void test('label names: what Pyroscope takes unchanged goes as it is; only what it refuses or changes is renamed', () => {
  assert.equal(pyroscopeLabelName('region'), 'region');
  assert.equal(pyroscopeLabelName('__meta'), '__meta', 'Pyroscope takes __-prefixed names');
  assert.equal(pyroscopeLabelName('a.b-c'), 'a_b_c');
  assert.equal(pyroscopeLabelName('9lives'), '_9lives');
  assert.equal(pyroscopeLabelName(''), '_');
});

void test('labels that would become one name are never merged: the later one gets a suffix, and the reason is reported', () => {
  const renames: string[] = [];
  const labels = pyroscopeLabels('memory', 'billing', {service_name: 'other', 'a.b': 'one', a_b: 'two', __session_id__: 's', env: 'prod', __x: 'x', empty: ''}, (from, to, why) => renames.push(`${from}->${to}: ${why}`));
  assert.deepEqual(labels, [
    ['__name__', 'memory'],
    ['__delta__', 'false'],
    ['service_name', 'billing'],
    ['__session_id___2', 's'],
    ['__x', 'x'],
    ['a_b', 'one'],
    ['a_b_2', 'two'],
    ['env', 'prod'],
    ['service_name_2', 'other'],
  ]);
  assert.deepEqual(renames, [
    '__session_id__->__session_id___2: __session_id__ is a label Pyroscope sets itself',
    'a.b->a_b: Pyroscope refuses or changes this name',
    'a_b->a_b_2: another label is sent as a_b',
    'service_name->service_name_2: service_name is a label Pyroscope sets itself',
  ]);
  const series = {labels, samples: [{raw: Buffer.alloc(1), id: ''}]};
  assert.equal(checkSeries(series), undefined, 'Pyroscope takes them');
  assert.equal(checkSeries(series, {labelSanitization: true}), undefined, 'also with its label sanitisation on');
  // what the fake refuses, as Pyroscope does with sanitisation on: a.b and a_b sent as they are
  assert.match(checkSeries({labels: [['__name__', 'memory'], ['service_name', 'b'], ['a.b', 'one'], ['a_b', 'two']], samples: series.samples}, {labelSanitization: true}) ?? '', /duplicate label name 'a_b' after label name sanitization/);
});

void test('each Go profile type gets the profile name Pyroscope files it under', () => {
  const table: [string, string, string][] = [
    ['cpu', 'cpu.pb.gz', 'process_cpu'],
    ['heap', 'heap.pb.gz', 'memory'],
    ['allocs', 'allocs.pb.gz', 'memory'],
    ['block', 'block.pb.gz', 'block'],
    ['mutex', 'mutex.pb.gz', 'mutex'],
    ['goroutine', 'goroutine.pb.gz', 'goroutine'],
    ['threadcreate', 'threadcreate.pb.gz', 'threadcreate'],
    ['fg-prof', 'goroutine.pb.gz', 'fg-prof'],
    ['fgprof', 'cpu.pb.gz', 'fgprof'],
  ];
  for (const [type, file, want] of table) assert.equal(profileNameOf(type, sampleTypeNames(fixture(file))), want, type);
  // godeltaprof serves Go's own profiles as deltas: filed as Alloy files godeltaprof_*
  assert.equal(profileNameOf('delta_mutex', sampleTypeNames(fixture('mutex.pb.gz')), true), 'mutex');
  assert.equal(profileNameOf('delta_block', sampleTypeNames(fixture('block.pb.gz')), true), 'block');
  assert.equal(profileNameOf('delta_heap', sampleTypeNames(fixture('heap.pb.gz')), true), 'memory');
  assert.equal(profileNameOf('custom.type', ['x']), 'custom.type');
  assert.equal(profileNameOf('cpu', ['samples', 'wall']), 'process_cpu');
  assert.deepEqual(sampleTypeNames(gunzipSync(fixture('block.pb.gz'))), ['contentions', 'delay']);
});

void test('the PushRequest decodes as Pyroscope reads it', () => {
  const raw = fixture('heap.pb.gz');
  const body = encodePushRequest([['__name__', 'memory'], ['service_name', 'ünïcode, {braces}=ok']], raw, '00000000-0000-4000-8000-000000000000');
  const [series, ...rest] = decodePushRequest(body);
  assert.equal(rest.length, 0);
  assert.deepEqual(series!.labels, [['__name__', 'memory'], ['service_name', 'ünïcode, {braces}=ok']]);
  assert.equal(series!.samples.length, 1);
  assert.ok(series!.samples[0]!.raw.equals(raw));
});

void test('profile IDs are UUIDs that stay the same for the same scrape', () => {
  const a = profileId(profile('heap', 'heap.pb.gz'));
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(profileId(profile('heap', 'heap.pb.gz')), a);
  assert.notEqual(profileId(profile('heap', 'heap.pb.gz', {time: 1})), a);
});

void test('a push carries tenant and credentials, and the fake takes it as Pyroscope would', async () => {
  const fake = await startPyroscopeFake({tenant: 'team-a', authorization: `Basic ${Buffer.from('123456:glc_token').toString('base64')}`});
  const repo = await createPyroscopeRepository('p', config(fake.url, {tenant: 'team-a', basic_auth: {username: '123456', password: new Secret('glc_token')}, headers: {'x-extra': 'yes'}}));
  try {
    const r = await repo.send(profile('goroutine', 'goroutine.pb.gz'), AbortSignal.timeout(5000));
    assert.deepEqual(r, {status: 'ok'});
    const [got] = await fake.waitFor(1);
    assert.equal(got!.label('__name__'), 'goroutine');
    assert.equal(got!.label('service_name'), 'billing api');
    assert.equal(got!.label('__delta__'), 'false');
    assert.equal(got!.label('instance'), '10.0.0.7:6060');
    assert.equal(got!.headers['x-extra'], 'yes');
    assert.equal(got!.headers['content-type'], 'application/proto');
    assert.ok(got!.raw.equals(profile('goroutine', 'goroutine.pb.gz').data), 'a non-cumulative profile goes as scraped');
  } finally {
    await repo.close();
    await fake.close();
  }
});

void test('answers map to results: 4xx permanent with the answer, 429 and 503 retryable with Retry-After, refused connections retryable', async () => {
  const fake = await startPyroscopeFake({tenant: 'x'});
  const repo = await createPyroscopeRepository('p', config(fake.url));
  try {
    const sig = (): AbortSignal => AbortSignal.timeout(5000);
    const missingTenant = await repo.send(profile('heap', 'heap.pb.gz'), sig());
    assert.equal(missingTenant.status, 'permanent');
    assert.match((missingTenant as {error: string}).error, /HTTP 401.*no org id/);
    fake.setFailure(() => ({status: 429, body: '{"code":"resource_exhausted","message":"rate limited"}', headers: {'retry-after': '7'}}));
    assert.deepEqual(await repo.send(profile('heap', 'heap.pb.gz'), sig()), {status: 'retryable', error: 'HTTP 429: {"code":"resource_exhausted","message":"rate limited"}', retryAfterMs: 7000});
    fake.setFailure(() => ({status: 503, body: 'unavailable'}));
    assert.equal((await repo.send(profile('heap', 'heap.pb.gz'), sig())).status, 'retryable');
  } finally {
    await repo.close();
    await fake.close();
  }
  const gone = await createPyroscopeRepository('p', config(fake.url));
  const r = await gone.send(profile('heap', 'heap.pb.gz'), AbortSignal.timeout(5000));
  assert.equal(r.status, 'retryable');
  await gone.close();
});

void test('prepare: cumulative types become deltas after a baseline; allocs gives way to a configured heap; godeltaprof and CPU go as they are', async () => {
  const repo = await createPyroscopeRepository('p', config('http://127.0.0.1:9'));
  try {
    const block = profile('block', 'block.pb.gz');
    assert.equal((await repo.prepare(block)).status, 'skipped');
    const p = Profile.decode(gunzipSync(block.data));
    p.timeNanos = BigInt(p.timeNanos) + BigInt(10e9);
    p.sample[0]!.value = p.sample[0]!.value.map((v) => Number(v) + 3);
    const next = await repo.prepare({...block, data: Buffer.from(p.encode()), time: block.time + 10_000});
    assert.equal(next.status, 'send');
    if (next.status === 'send') {
      const d = Profile.decode(gunzipSync(next.profile.data));
      assert.equal(d.sample.length, 1);
      assert.deepEqual(d.sample[0]!.value.map(Number), [3, 3]);
      assert.equal(next.profile.durationMs, 10_000);
    }
    const cpu = profile('cpu', 'cpu.pb.gz');
    assert.deepEqual(await repo.prepare(cpu), {status: 'send', profile: cpu});
    const godelta = profile('delta_heap', 'heap.pb.gz', {delta: true});
    assert.deepEqual(await repo.prepare(godelta), {status: 'send', profile: godelta});
    assert.equal((await repo.prepare(profile('allocs', 'allocs.pb.gz', {targetId: 'other', targetTypes: ['cpu', 'allocs']}))).status, 'skipped');
    assert.equal(repo.deltas.has('other\0allocs'), true, 'allocs of a target without heap is delta-computed');
    const allocs = await repo.prepare(profile('allocs', 'allocs.pb.gz', {targetTypes: ['heap', 'allocs']}));
    assert.equal(allocs.status, 'skipped');
    assert.match((allocs as {reason: string}).reason, /same samples as this target's heap/);
    assert.equal(repo.deltas.has('abc\0allocs'), false);
  } finally {
    await repo.close();
  }
});
