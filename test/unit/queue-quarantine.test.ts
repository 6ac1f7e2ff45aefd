/**
 * A queued item that its repository cannot prepare, or that the daemon died
 * while preparing, goes to quarantine/ after that one attempt; the items
 * behind it are sent.
 */
import assert from 'node:assert/strict';
import {readdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {createMetrics} from '../../src/metrics.js';
import type {Metrics} from '../../src/metrics.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {PREPARING_FILE} from '../../src/delivery/prepare-note.js';
import type {QueueDeps, QueueSettings} from '../../src/delivery/settings.js';
import type {Prepared} from '../../src/repositories/repository.js';
import {openSpool} from '../../src/delivery/spool.js';
import type {Spool} from '../../src/delivery/spool.js';
import {ScriptedRepository, settings, tempDir} from '../helpers/delivery.js';
import type {Script} from '../helpers/delivery.js';
import {captureLogger} from '../helpers/log.js';
import {metricSum} from '../helpers/metrics.js';
import {seqOf, taggedProfile} from '../helpers/profiles.js';
import {waitUntil} from '../helpers/wait.js';

/** A repository with a prepare step (as Pyroscope's delta) that a test scripts. */
class PreparingRepository extends ScriptedRepository {
  /** seq of each prepare() call, in order. */
  readonly prepared: number[] = [];
  constructor(
    name: string,
    readonly onPrepare: (profile: ScrapedProfile) => Promise<Prepared> | Prepared,
    script?: Script,
  ) {
    super(name, script);
  }
  async prepare(profile: ScrapedProfile): Promise<Prepared> {
    this.prepared.push(seqOf(profile));
    return this.onPrepare(profile);
  }
}

const asIs = (profile: ScrapedProfile): Prepared => ({status: 'send', profile});
const down = (): {status: 'retryable'; error: string} => ({status: 'retryable', error: 'connect ECONNREFUSED'});

interface Rig {
  spool: Spool;
  metrics: Metrics;
  lines: Record<string, unknown>[];
}

async function rig(stateDir: string, repo: PreparingRepository, s: QueueSettings = settings(), deps: Partial<QueueDeps> = {}): Promise<Rig> {
  const {logger, records: lines} = captureLogger();
  const metrics = createMetrics({defaultMetrics: false});
  const spool = await openSpool(stateDir, {logger, metrics, ackFlushMs: 10, ...deps});
  spool.activate(new Map([[repo.name, await spool.attach(repo, s)]]));
  return {spool, metrics, lines};
}

void test('a profile whose prepare throws is quarantined after that one attempt, and the next ones are sent', async () => {
  const {dir, cleanup} = await tempDir();
  const repo = new PreparingRepository('r', (p) => {
    if (seqOf(p) === 2) throw new RangeError('profile holds 3000000 samples, over scrape.max_samples (1000000)');
    return asIs(p);
  });
  const {spool, metrics, lines} = await rig(dir, repo, settings({parallelism: 1}));
  const profiles = [0, 1, 2, 3, 4].map((i) => taggedProfile(i, 300));
  try {
    for (const p of profiles) await spool.submit(p);
    await repo.waitAccepted(4);
    await waitUntil('an empty queue', () => spool.queue('r')!.stats().length === 0);
    assert.deepEqual([...repo.accepted.keys()].sort(), [0, 1, 3, 4]);
    assert.equal(repo.prepared.filter((s) => s === 2).length, 1, 'prepared once, never again');
    assert.equal(repo.calls.filter((c) => c.seq === 2).length, 0, 'never sent');
    assert.equal(await metricSum(metrics.queueQuarantined, {repository: 'r', reason: 'prepare'}), 1);
    assert.equal(await metricSum(metrics.queueDropped, {repository: 'r', reason: 'prepare'}), 1);
    assert.equal(await metricSum(metrics.sendRetries, {repository: 'r'}), 0, 'a failed prepare is no outage of the repository');

    const line = lines.find((l) => String(l['msg']).startsWith('the repository could not prepare a queued profile'));
    assert.ok(line, 'a log line');
    assert.equal(line['level'], 50);
    assert.equal(line['repository'], 'r');
    assert.equal(line['service'], 'svc');
    assert.equal(line['type'], 'heap');
    assert.match(String(line['segment']), /\.seg$/);
    assert.equal(typeof line['offset'], 'number');
    assert.equal(line['error'], 'RangeError: profile holds 3000000 samples, over scrape.max_samples (1000000)');

    const qdir = join(dir, 'queues', 'r', 'quarantine');
    const files = (await readdir(qdir)).sort();
    assert.equal(files.length, 2, files.join(', '));
    assert.equal(line['moved_to'], join(qdir, files.find((f) => f.endsWith('.pb.gz'))!));
    assert.deepEqual(await readFile(join(qdir, files.find((f) => f.endsWith('.pb.gz'))!)), profiles[2]!.data, 'the profile as scraped');
    const note = JSON.parse(await readFile(join(qdir, files.find((f) => f.endsWith('.json'))!), 'utf8')) as Record<string, unknown>;
    assert.equal(note['reason'], 'prepare');
    assert.equal(note['repository'], 'r');
    assert.match(String(note['error']), /over scrape\.max_samples/);
    assert.deepEqual((note['profile'] as {labels: unknown}).labels, profiles[2]!.labels);
  } finally {
    await spool.close(100);
    await cleanup();
  }
});

void test('a backlog item whose prepare throws at start does not hold the backlog behind it', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, new PreparingRepository('r', asIs, down));
    for (let i = 0; i < 6; i++) await a.spool.submit(taggedProfile(i));
    await a.spool.close(0);

    const repo = new PreparingRepository('r', (p) => {
      if (seqOf(p) === 0) throw new Error('cannot decode');
      return asIs(p);
    });
    const b = await rig(dir, repo);
    await repo.waitAccepted(5);
    await waitUntil('an empty queue', () => b.spool.queue('r')!.stats().length === 0);
    assert.deepEqual([...repo.accepted.keys()].sort(), [1, 2, 3, 4, 5]);
    assert.equal(repo.prepared.filter((s) => s === 0).length, 1);
    assert.equal(await metricSum(b.metrics.queueQuarantined, {repository: 'r', reason: 'prepare'}), 1);
    await b.spool.close(100);

    // and the next start does not meet it again
    const again = new PreparingRepository('r', asIs);
    const c = await rig(dir, again);
    await c.spool.queue('r')!.whenReady();
    assert.equal(c.spool.queue('r')!.stats().length, 0);
    await c.spool.close(0);
    assert.deepEqual(again.prepared, []);
  } finally {
    await cleanup();
  }
});

void test('the daemon dying while it prepares an item: the next start quarantines that item and sends the rest', async () => {
  const {dir, cleanup} = await tempDir();
  let release: () => void = () => undefined;
  const hung = new Promise<void>((r) => (release = r));
  // the first process: preparing profile 2 never returns, as a process that ran out of memory in it
  const first = new PreparingRepository('r', async (p) => {
    if (seqOf(p) === 2) await hung;
    return asIs(p);
  });
  const a = await rig(dir, first, settings({parallelism: 1}));
  try {
    for (let i = 0; i < 5; i++) await a.spool.submit(taggedProfile(i));
    await waitUntil('profile 2 being prepared', () => first.prepared.includes(2));
    await first.waitAccepted(2);
    const noted = await readFile(join(dir, 'queues', 'r', PREPARING_FILE), 'latin1');
    assert.match(noted, /^\S+ \d+ *\n$/, 'the note names the item');

    // the next process, on the same state_dir, while the first never finished
    const second = new PreparingRepository('r', asIs);
    const b = await rig(dir, second);
    await second.waitAccepted(2);
    await waitUntil('an empty queue', () => b.spool.queue('r')!.stats().length === 0);
    assert.ok(second.accepted.has(3) && second.accepted.has(4), 'the profiles behind it arrive');
    assert.ok(!second.prepared.includes(2), 'not prepared again');
    assert.ok(!second.accepted.has(2));
    assert.equal(await metricSum(b.metrics.queueQuarantined, {repository: 'r', reason: 'interrupted'}), 1);
    const line = b.lines.find((l) => String(l['msg']).startsWith('the daemon stopped while preparing this queued profile'));
    assert.ok(line, 'a log line');
    assert.equal(line['level'], 50);
    assert.equal(line['service'], 'svc');
    assert.equal(line['type'], 'heap');
    assert.equal(typeof line['offset'], 'number');
    const files = await readdir(join(dir, 'queues', 'r', 'quarantine'));
    const json = files.find((f) => f.endsWith('.json'))!;
    const note = JSON.parse(await readFile(join(dir, 'queues', 'r', 'quarantine', json), 'utf8')) as Record<string, unknown>;
    assert.equal(note['reason'], 'interrupted');
    assert.match(String(note['error']), /stopped while preparing this item \(possibly a crash caused by it\)/);
    assert.equal((note['profile'] as {labels: Record<string, string>}).labels['seq'], '2');
    assert.equal((await readFile(join(dir, 'queues', 'r', PREPARING_FILE), 'latin1')).trim(), '', 'the note is resolved');
    await b.spool.close(100);
  } finally {
    release();
    await a.spool.close(0);
    await cleanup();
  }
});

void test('a graceful stop while an item is prepared does not quarantine it', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const first = new PreparingRepository('r', async (p) => {
      if (seqOf(p) === 1) await slow;
      return asIs(p);
    });
    const a = await rig(dir, first, settings({parallelism: 1}));
    for (let i = 0; i < 3; i++) await a.spool.submit(taggedProfile(i));
    await waitUntil('profile 1 being prepared', () => first.prepared.includes(1));
    const closing = a.spool.close(50);
    release();
    await closing;
    assert.equal((await readFile(join(dir, 'queues', 'r', PREPARING_FILE), 'latin1')).trim(), '', 'a finished prepare leaves no note');

    const second = new PreparingRepository('r', asIs);
    const b = await rig(dir, second);
    await b.spool.queue('r')!.whenReady();
    await waitUntil('an empty queue', () => b.spool.queue('r')!.stats().length === 0);
    assert.deepEqual([...new Set([...first.accepted.keys(), ...second.accepted.keys()])].sort(), [0, 1, 2], 'every profile arrives');
    assert.equal(await metricSum(b.metrics.queueQuarantined, {repository: 'r'}), 0);
    assert.deepEqual(await readdir(join(dir, 'queues', 'r', 'quarantine')), []);
    await b.spool.close(100);
  } finally {
    await cleanup();
  }
});

void test('a note that names no queued item, or is not a note, is ignored', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const a = await rig(dir, new PreparingRepository('r', asIs, down));
    for (let i = 0; i < 2; i++) await a.spool.submit(taggedProfile(i));
    await a.spool.close(0);
    for (const text of ['00000000000000-abcdef-000000 8\n', '\u0000garbage\u0007 not a note']) {
      await writeFile(join(dir, 'queues', 'r', PREPARING_FILE), text);
      const repo = new PreparingRepository('r', asIs, down);
      const b = await rig(dir, repo);
      await b.spool.queue('r')!.whenReady();
      assert.equal(b.spool.queue('r')!.stats().length, 2);
      assert.equal(await metricSum(b.metrics.queueQuarantined, {repository: 'r'}), 0);
      await b.spool.close(0);
    }
  } finally {
    await cleanup();
  }
});

void test('past its bound, quarantine/ keeps no more copies; the item still leaves the queue, logged and counted', async () => {
  const {dir, cleanup} = await tempDir();
  const repo = new PreparingRepository('r', (p) => {
    if (seqOf(p) % 2 === 0) throw new Error('cannot decode');
    return asIs(p);
  });
  const {spool, metrics, lines} = await rig(dir, repo, settings({parallelism: 1}), {quarantineMaxBytes: 3000});
  try {
    for (let i = 0; i < 6; i++) await spool.submit(taggedProfile(i, 1000));
    await repo.waitAccepted(3);
    await waitUntil('an empty queue', () => spool.queue('r')!.stats().length === 0);
    assert.equal(await metricSum(metrics.queueQuarantined, {repository: 'r', reason: 'prepare'}), 3);
    const files = await readdir(join(dir, 'queues', 'r', 'quarantine'));
    assert.equal(files.filter((f) => f.endsWith('.pb.gz')).length, 2, 'two copies fit in 3000 bytes, the third does not');
    // one line a second: the first is out at once, and says where the copy is
    assert.ok(lines.some((l) => typeof l['moved_to'] === 'string'));
  } finally {
    await spool.close(100);
    await cleanup();
  }
});
