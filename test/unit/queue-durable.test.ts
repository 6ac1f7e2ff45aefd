import assert from 'node:assert/strict';
import {readdir, readFile, open as openFile, appendFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {createMetrics} from '../../src/metrics.js';
import type {Metrics} from '../../src/metrics.js';
import {createProfefeRepository} from '../../src/repositories/profefe.js';
import type {QueueSettings} from '../../src/delivery/settings.js';
import {encodeRecord, recordLength, scanSegment} from '../../src/delivery/record.js';
import type {Repository} from '../../src/repositories/repository.js';
import {openSpool} from '../../src/delivery/spool.js';
import type {Spool} from '../../src/delivery/spool.js';
import {ScriptedRepository, settings, tempDir} from '../helpers/delivery.js';
import {captureLogger} from '../helpers/log.js';
import {metricSum} from '../helpers/metrics.js';
import {startProfefeFake} from '../helpers/profefe-fake.js';
import {fixture, taggedProfile} from '../helpers/profiles.js';
import {waitUntil} from '../helpers/wait.js';

interface Rig {
  spool: Spool;
  metrics: Metrics;
  lines: Record<string, unknown>[];
}

async function rig(stateDir: string, repos: [Repository, QueueSettings][]): Promise<Rig> {
  const {logger, records: lines} = captureLogger();
  const metrics = createMetrics({defaultMetrics: false});
  const spool = await openSpool(stateDir, {logger, metrics, ackFlushMs: 10});
  const handles = new Map();
  for (const [repo, s] of repos) handles.set(repo.name, await spool.attach(repo, s));
  spool.activate(handles);
  return {spool, metrics, lines};
}

const down = (): {status: 'retryable'; error: string} => ({status: 'retryable', error: 'connect ECONNREFUSED'});

void test('a repository down for a while, then up: every profile arrives, once', async () => {
  const {dir, cleanup} = await tempDir();
  let isDown = true;
  const repo = new ScriptedRepository('r', () => (isDown ? down() : {status: 'ok'}));
  const {spool, metrics} = await rig(dir, [[repo, settings({policy: {initialMs: 20, maxMs: 80}})]]);
  try {
    for (let i = 0; i < 40; i++) await spool.submit(taggedProfile(i));
    await waitUntil('retries during the outage', () => repo.calls.length >= 3);
    // while it fails, the queue probes with one profile at a time
    assert.ok(repo.calls.every((c) => c.seq === 0), 'only the oldest profile is tried during the outage');
    assert.equal(spool.queue('r')!.stats().length, 40);
    const text = await metrics.registry.metrics();
    assert.match(text, /pprof_scraper_queue_length\{repository="r"\} 40\n/);
    assert.match(text, /pprof_scraper_queue_bytes\{repository="r"\} [1-9]\d{3,}\n/);
    const age = Number(/pprof_scraper_queue_oldest_age_seconds\{repository="r"\} ([0-9.e-]+)/.exec(text)?.[1]);
    assert.ok(age > 0 && age < 60, `oldest age ${age} s`);
    isDown = false;
    await repo.waitAccepted(40);
    await waitUntil('an empty queue', () => spool.queue('r')!.stats().length === 0);
    assert.deepEqual([...repo.accepted.keys()].sort((a, b) => a - b), Array.from({length: 40}, (_, i) => i));
    assert.ok([...repo.accepted.values()].every((n) => n === 1), 'each profile accepted exactly once');
    assert.equal(await metricSum(metrics.profilesSent, {repository: 'r', result: 'ok'}), 40);
    assert.ok((await metricSum(metrics.sendRetries, {repository: 'r'})) >= 3);
  } finally {
    await spool.close(100);
  }
  // everything finished: no segment is left behind
  assert.deepEqual((await readdir(join(dir, 'queues', 'r'))).filter((f) => f.endsWith('.seg')), []);
  await cleanup();
});

void test('what is on disk at start is sent first, and nothing twice', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const first = new ScriptedRepository('r', down);
    const a = await rig(dir, [[first, settings()]]);
    for (let i = 0; i < 12; i++) await a.spool.submit(taggedProfile(i));
    await a.spool.close(0);

    const second = new ScriptedRepository('r');
    const b = await rig(dir, [[second, settings({parallelism: 2})]]);
    for (let i = 12; i < 16; i++) await b.spool.submit(taggedProfile(i));
    await second.waitAccepted(16);
    const firstCall = new Map<number, number>();
    second.calls.forEach((c, i) => firstCall.has(c.seq) || firstCall.set(c.seq, i));
    const lastBacklog = Math.max(...[...Array(12).keys()].map((s) => firstCall.get(s)!));
    const firstNew = Math.min(...[12, 13, 14, 15].map((s) => firstCall.get(s)!));
    assert.ok(lastBacklog < firstNew, 'the backlog is sent before profiles taken after the start');
    assert.ok([...second.accepted.values()].every((n) => n === 1));
    assert.ok(b.lines.some((l) => l['msg'] === 'queue backlog found on disk: sending it first' && l['profiles'] === 12));
    await b.spool.close(100);
  } finally {
    await cleanup();
  }
});

void test('a damaged item is quarantined with a log line; the items around it arrive', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, [[new ScriptedRepository('r', down), settings()]]);
    for (let i = 0; i < 5; i++) await a.spool.submit(taggedProfile(i, 400));
    await a.spool.close(0);

    // flip a byte inside profile 2's record (the file is shared by hard link: this is the one copy)
    const qdir = join(dir, 'queues', 'r');
    const seg = (await readdir(qdir)).find((f) => f.endsWith('.seg'))!;
    const fh = await openFile(join(qdir, seg), 'r+');
    const offsets: number[] = [];
    await scanSegment(fh, (await fh.stat()).size, (e) => {
      if (e.kind === 'record') offsets.push(e.offset + e.length);
    });
    const inside = offsets[1]! + 200;
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, inside);
    byte[0] = byte[0]! ^ 0x55;
    await fh.write(byte, 0, 1, inside);
    // and a record cut short at the end, as a kill during a write leaves it
    const torn = Buffer.concat(encodeRecord(taggedProfile(99), 1)).subarray(0, 40);
    await fh.close();
    await appendFile(join(qdir, seg), torn);

    const repo = new ScriptedRepository('r');
    const b = await rig(dir, [[repo, settings()]]);
    await repo.waitAccepted(4);
    await waitUntil('an empty queue', () => b.spool.queue('r')!.stats().length === 0);
    assert.deepEqual([...repo.accepted.keys()].sort(), [0, 1, 3, 4]);
    const quarantined = await readdir(join(qdir, 'quarantine'));
    assert.equal(quarantined.length, 1);
    const bytes = await readFile(join(qdir, 'quarantine', quarantined[0]!));
    assert.ok(bytes.includes(Buffer.from('profile-2:')), 'the quarantined bytes are profile 2');
    assert.ok(b.lines.some((l) => l['msg']?.toString().startsWith('damaged queue item') && l['level'] === 50));
    assert.ok(b.lines.some((l) => l['msg']?.toString().startsWith('ignoring an incomplete record at the end')));
    assert.equal(await metricSum(b.metrics.queueDropped, {repository: 'r', reason: 'damaged'}), 1);
    await b.spool.close(100);
  } finally {
    await cleanup();
  }
});

void test('an unreadable segment is moved to quarantine whole, and the daemon goes on', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, [[new ScriptedRepository('r', down), settings()]]);
    await a.spool.submit(taggedProfile(1));
    await a.spool.close(0);
    const qdir = join(dir, 'queues', 'r');
    const seg = (await readdir(qdir)).find((f) => f.endsWith('.seg'))!;
    const fh = await openFile(join(qdir, seg), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, 0);
    await fh.close();

    const repo = new ScriptedRepository('r');
    const b = await rig(dir, [[repo, settings()]]);
    await b.spool.queue('r')!.whenReady();
    await b.spool.submit(taggedProfile(2));
    await repo.waitAccepted(1);
    assert.deepEqual([...repo.accepted.keys()], [2]);
    assert.deepEqual(await readdir(join(qdir, 'quarantine')), [seg]);
    assert.ok(b.lines.some((l) => l['msg']?.toString().startsWith('queue segment is unreadable')));
    await b.spool.close(100);
  } finally {
    await cleanup();
  }
});

void test('the size bound drops the oldest profiles first, each counted and logged', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const size = recordLength(encodeRecord(taggedProfile(10, 1000), 0));
    const bound = settings({maxBytes: Math.floor(size * 5.5), policy: {initialMs: 60_000, maxMs: 60_000}});
    const a = await rig(dir, [[new ScriptedRepository('r', down), bound]]);
    for (let i = 0; i < 20; i++) await a.spool.submit(taggedProfile(10 + i, 1000));
    const stats = a.spool.queue('r')!.stats();
    assert.equal(stats.length, 5);
    assert.ok(stats.bytes <= bound.maxBytes);
    assert.equal(await metricSum(a.metrics.queueDropped, {repository: 'r', reason: 'full'}), 15);
    const dropLines = (): Record<string, unknown>[] => a.lines.filter((l) => l['reason'] === 'full');
    assert.ok(dropLines().length >= 1);
    // every drop is in a line: itself, or folded into the next one that got out, or into a trailing line when the second is up
    const logged = (): number => dropLines().reduce((n, l) => n + (l['folded'] !== undefined ? Number(l['folded']) : 1 + Number(l['also_dropped'] ?? 0)), 0);
    await waitUntil('every drop logged', async () => logged() === 15);
    assert.equal(dropLines()[0]!['service'], 'svc');
    await a.spool.close(0);
    assert.equal(logged(), 15);

    const repo = new ScriptedRepository('r');
    await rig(dir, [[repo, bound]]);
    await repo.waitAccepted(5);
    // a sleep on purpose: no other profile may arrive within it
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...repo.accepted.keys()].sort((x, y) => x - y), [25, 26, 27, 28, 29]);
  } finally {
    await cleanup();
  }
});

void test('a profile older than max_age is dropped, not sent', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, [[new ScriptedRepository('r', down), settings({policy: {initialMs: 60_000, maxMs: 60_000}})]]);
    for (let i = 0; i < 3; i++) await a.spool.submit(taggedProfile(i));
    await a.spool.close(0);
    // time must pass, not an event: the profiles grow older than the max_age (100 ms) below
    await new Promise((r) => setTimeout(r, 150));
    const repo = new ScriptedRepository('r');
    const b = await rig(dir, [[repo, settings({maxAgeMs: 100})]]);
    await waitUntil('3 expired drops', async () => (await metricSum(b.metrics.queueDropped, {repository: 'r', reason: 'expired'})) === 3);
    assert.equal(repo.calls.length, 0);
    await b.spool.close(0);
  } finally {
    await cleanup();
  }
});

void test('429 with Retry-After is honoured, over the shorter backoff', async () => {
  const fake = await startProfefeFake();
  const {dir, cleanup} = await tempDir();
  const data = fixture('heap');
  let first = 0;
  let second = 0;
  fake.setFailure((req) => {
    if (req.seq === 0) {
      first = Date.now();
      return {status: 429, body: 'slow down', headers: {'retry-after': '1'}};
    }
    second ||= Date.now();
    return undefined;
  });
  const repo = await createProfefeRepository('p', {url: fake.url, queue: {max_size: 1e9, max_age: 1e9}, retry: {initial_backoff: 10, max_backoff: 50}, timeout: 5000});
  const {spool, metrics} = await rig(dir, [[repo, settings({policy: {initialMs: 10, maxMs: 50}})]]);
  try {
    await spool.submit(taggedProfile(1, 0, {data}));
    await fake.waitForProfiles(1);
    assert.ok(second - first >= 950, `retried after ${second - first} ms, Retry-After said 1 s`);
    assert.equal(await metricSum(metrics.sendRetries, {repository: 'p'}), 1);
  } finally {
    await spool.close(100);
    await repo.close();
    await fake.close();
    await cleanup();
  }
});

void test('400 is permanent: dropped after one try, logged with the answer, counted', async () => {
  const fake = await startProfefeFake();
  const {dir, cleanup} = await tempDir();
  const data = fixture('heap');
  fake.setFailure((req) => (req.url.includes('bad') ? {status: 400, body: 'labels: invalid value'} : undefined));
  const repo = await createProfefeRepository('p', {url: fake.url, queue: {max_size: 1e9, max_age: 1e9}, retry: {initial_backoff: 10, max_backoff: 50}, timeout: 5000});
  const {spool, metrics, lines} = await rig(dir, [[repo, settings()]]);
  try {
    await spool.submit(taggedProfile(1, 0, {data, labels: {instance: 'x', seq: '1', tag: 'bad'}}));
    await spool.submit(taggedProfile(2, 0, {data}));
    await fake.waitForProfiles(1);
    await waitUntil('an empty queue', () => spool.queue('p')!.stats().length === 0);
    assert.equal(fake.received.length, 1);
    assert.equal(await metricSum(metrics.profilesSent, {repository: 'p', result: 'permanent'}), 1);
    assert.equal(await metricSum(metrics.queueDropped, {repository: 'p', reason: 'rejected'}), 1);
    assert.equal(await metricSum(metrics.sendRetries, {repository: 'p'}), 0);
    const line = lines.find((l) => l['msg']?.toString().startsWith('repository refused the profile'));
    assert.match(String(line?.['answer']), /HTTP 400: labels: invalid value/);
  } finally {
    await spool.close(100);
    await repo.close();
    await fake.close();
    await cleanup();
  }
});

void test('a slow repository delays neither scrapes nor another repository', async () => {
  const {dir, cleanup} = await tempDir();
  // it never answers while the daemon runs: anything that waited for it would wait forever
  const slow = new ScriptedRepository('slow', (_p, _c, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve({status: 'retryable', error: 'aborted'}))));
  const fast = new ScriptedRepository('fast');
  const {spool} = await rig(dir, [[slow, settings()], [fast, settings()]]);
  try {
    for (let i = 0; i < 30; i++) await spool.submit(taggedProfile(i));
    await fast.waitAccepted(30);
    assert.equal(slow.accepted.size, 0);
    assert.ok(slow.calls.length >= 1, 'the slow repository has sends hanging');
    assert.equal(spool.queue('slow')!.stats().length, 30);
  } finally {
    await spool.close(50);
  }
  // the slow repository's profiles wait on disk for the next start
  const later = new ScriptedRepository('slow');
  const b = await rig(dir, [[later, settings()], [new ScriptedRepository('fast'), settings()]]);
  await later.waitAccepted(30);
  assert.equal(b.spool.queue('fast')!.stats().length, 0);
  await b.spool.close(100);
  await cleanup();
});

void test('a reload that swaps a repository keeps what its queue holds', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const old = new ScriptedRepository('r', down);
    const {spool} = await rig(dir, [[old, settings()]]);
    for (let i = 0; i < 10; i++) await spool.submit(taggedProfile(i));
    const replacement = new ScriptedRepository('r');
    const oldHandle = spool.outboxes.get('r')!;
    const h = await spool.attach(replacement, settings());
    spool.activate(new Map([['r', h]]));
    await oldHandle.close(1000);
    await spool.submit(taggedProfile(10));
    await replacement.waitAccepted(11);
    assert.equal(old.accepted.size, 0);
    await spool.close(100);
  } finally {
    await cleanup();
  }
});

void test('a profile queued for one repository goes only there, across a restart too', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, [[new ScriptedRepository('one', down), settings()], [new ScriptedRepository('two', down), settings()]]);
    await a.spool.outboxes.get('one')!.enqueue(taggedProfile(1));
    await a.spool.submit(taggedProfile(2));
    await a.spool.close(0);
    const one = new ScriptedRepository('one');
    const two = new ScriptedRepository('two');
    await rig(dir, [[one, settings()], [two, settings()]]);
    await one.waitAccepted(2);
    await two.waitAccepted(1);
    // a sleep on purpose: no other profile may arrive within it
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...one.accepted.keys()].sort(), [1, 2]);
    assert.deepEqual([...two.accepted.keys()], [2]);
  } finally {
    await cleanup();
  }
});

void test('sends that fail together back off once, not once each', async () => {
  const {dir, cleanup} = await tempDir();
  let isDown = true;
  let inFlight = 0;
  let most = 0;
  let release: () => void = () => undefined;
  const together = new Promise<void>((r) => (release = r));
  const repo = new ScriptedRepository('r', async () => {
    most = Math.max(most, ++inFlight);
    if (most === 4) release();
    await together;
    inFlight--;
    return isDown ? down() : {status: 'ok'};
  });
  const {spool, lines} = await rig(dir, [[repo, settings({parallelism: 4, policy: {initialMs: 300, maxMs: 10_000}})]]);
  try {
    await Promise.all([0, 1, 2, 3].map((i) => spool.submit(taggedProfile(i))));
    await waitUntil('the outage to be logged', () => lines.some((l) => String(l['msg']).startsWith('repository did not take a profile')));
    assert.equal(most, 4, 'four sends were in flight together');
    const warn = lines.find((l) => String(l['msg']).startsWith('repository did not take a profile'))!;
    // four failures of one round: one backoff step, at most initial_backoff (not 2^3 × that)
    assert.equal(warn['attempts'], 1);
    assert.ok(Number(warn['retry_in_ms']) <= 300, `retry in ${String(warn['retry_in_ms'])} ms`);
    isDown = false;
    await repo.waitAccepted(4);
  } finally {
    await spool.close(100);
    await cleanup();
  }
});

void test('finished items stay finished across restarts, even after a torn note', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    let up = true;
    const first = new ScriptedRepository('r', (p) => (up || Number(p.labels['seq']) < 5 ? {status: 'ok'} : down()));
    const a = await rig(dir, [[first, settings({policy: {initialMs: 60_000, maxMs: 60_000}})]]);
    for (let i = 0; i < 5; i++) await a.spool.submit(taggedProfile(i));
    await first.waitAccepted(5);
    up = false;
    for (let i = 5; i < 10; i++) await a.spool.submit(taggedProfile(i));
    await a.spool.close(0);
    const qdir = join(dir, 'queues', 'r');
    const done = (await readdir(qdir)).find((f) => f.endsWith('.done'))!;
    await appendFile(join(qdir, done), Buffer.from([1, 2]));

    // the second run takes 5, 6 and 7; its notes go after the torn bytes
    const second = new ScriptedRepository('r', (p) => (Number(p.labels['seq']) <= 7 ? {status: 'ok'} : down()));
    const b = await rig(dir, [[second, settings({policy: {initialMs: 60_000, maxMs: 60_000}})]]);
    await second.waitAccepted(3);
    await waitUntil('two left', () => b.spool.queue('r')!.stats().length === 2);
    await waitUntil('the failed try of 8', () => second.calls.some((c) => c.seq === 8 && c.result !== undefined));
    await b.spool.close(0);
    assert.deepEqual([...second.accepted.keys()].sort(), [5, 6, 7]);

    const third = new ScriptedRepository('r');
    const c = await rig(dir, [[third, settings()]]);
    await third.waitAccepted(2);
    await waitUntil('an empty queue', () => c.spool.queue('r')!.stats().length === 0);
    // a sleep on purpose: no other send may come within it
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(third.calls.map((x) => x.seq).sort(), [8, 9], 'only what was never taken is sent');
    await c.spool.close(0);
    assert.deepEqual((await readdir(qdir)).filter((f) => f.endsWith('.seg') || f.endsWith('.done')), [], 'the finished segment is gone');
  } finally {
    await cleanup();
  }
});

void test('two daemons cannot share a state_dir; a lock left by a dead one is taken over', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const {writeFile} = await import('node:fs/promises');
    const {spawnSync} = await import('node:child_process');
    await openSpool(dir, {logger: captureLogger().logger, metrics: createMetrics({defaultMetrics: false})}).then((s) => s.close(0));
    const lock = join(dir, 'queues', '.lock');
    // the test runner, our parent, is alive
    await writeFile(lock, `${process.ppid}\n`);
    await assert.rejects(openSpool(dir, {logger: captureLogger().logger, metrics: createMetrics({defaultMetrics: false})}), (err: Error) => {
      assert.equal(err.name, 'StateDirInUseError');
      assert.match(err.message, new RegExp(`in use by another pprof-scraper \\(pid ${process.ppid}`));
      return true;
    });
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(lock, `${gone}\n`);
    const spool = await openSpool(dir, {logger: captureLogger().logger, metrics: createMetrics({defaultMetrics: false})});
    assert.equal((await readFile(lock, 'utf8')).trim(), String(process.pid));
    await spool.close(0);
  } finally {
    await cleanup();
  }
});
