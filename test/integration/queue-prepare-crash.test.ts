/**
 * The daemon as operators run it, with a Pyroscope repository whose queue
 * holds, ahead of ordinary profiles, one that is heavy to prepare (the
 * delta): the daemon dies while preparing it, on its own (out of heap) or
 * by kill -9. Under systemd's Restart=on-failure that must not become a
 * crash loop: the next start puts the item in quarantine/ and sends the
 * profiles behind it.
 */
import assert from 'node:assert/strict';
import type {ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {open, readdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {gzipSync} from 'node:zlib';
import {createMetrics} from '../../src/metrics.js';
import {silentLogger} from '../../src/log.js';
import {lenField, varintBytes, varintField} from '../helpers/wire-fields.js';
import {parsePreparing, PREPARING_FILE} from '../../src/delivery/prepare-note.js';
import {scanSegment} from '../../src/delivery/record.js';
import {openSpool} from '../../src/delivery/spool.js';
import {CLI, startDaemon} from '../helpers/cli.js';
import type {DaemonProcess} from '../helpers/cli.js';
import {ScriptedRepository, settings, tempDir} from '../helpers/delivery.js';
import {exposedValue} from '../helpers/metrics.js';
import {httpGet} from '../helpers/operate.js';
import {fixture, taggedProfile} from '../helpers/profiles.js';
import {startPyroscopeFake} from '../helpers/pyroscope-fake.js';
import {waitUntil} from '../helpers/wait.js';

/** The heap the daemons get: about three times what the idle daemon uses. */
const HEAP_MIB = 48;

/**
 * An allocs profile of `samples` 16-frame samples: within the default
 * structure limits (a million samples, 16 million frames), yet most of a
 * second of delta work with the profile read where it lies, and 450 bytes a
 * sample (out of a small heap) for a decoder that builds an object per
 * sample. Samples repeat every hundred, so the gzip stays small.
 */
function heavyAllocsProfile(samples: number): Buffer {
  const locations = 1000;
  const block: Buffer[] = [];
  for (let s = 0; s < 100; s++) {
    const ids: Buffer[] = [];
    for (let d = 0; d < 16; d++) ids.push(varintBytes(1 + ((s * 7 + d * 13) % locations)));
    block.push(lenField(2, Buffer.concat([lenField(1, Buffer.concat(ids)), lenField(2, Buffer.concat([varintBytes(1), varintBytes(512)]))])));
  }
  const one = Buffer.concat(block);
  const parts = [lenField(1, Buffer.concat([varintField(1, 1), varintField(2, 2)])), lenField(1, Buffer.concat([varintField(1, 3), varintField(2, 4)])), Buffer.alloc(one.length * Math.ceil(samples / 100)).fill(one)];
  for (let l = 1; l <= locations; l++) parts.push(lenField(4, Buffer.concat([varintField(1, l), varintField(3, 0x1000 + l), lenField(4, Buffer.concat([varintField(1, 1), varintField(2, l)]))])));
  parts.push(lenField(5, Buffer.concat([varintField(1, 1), varintField(2, 5), varintField(4, 6)])));
  for (const s of ['', 'alloc_objects', 'count', 'alloc_space', 'bytes', 'main.f', 'main.go']) parts.push(lenField(6, Buffer.from(s)));
  parts.push(varintField(9, 1_700_000_000));
  return gzipSync(Buffer.concat(parts));
}

/** How the process ended: on its own, or killed by us once it noted that it prepares the item at `offset`. */
async function dieWhilePreparing(child: ChildProcess, note: string, offset: number, timeoutMs: number): Promise<{code: number | null; signal: NodeJS.Signals | null; killed: boolean}> {
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({code: child.exitCode, signal: child.signalCode});
    else child.once('exit', (code, signal) => resolve({code, signal}));
  });
  let done = false;
  void exited.then(() => (done = true));
  // polled each millisecond: the kill must come while the item is being prepared
  const item = await waitUntil('the daemon to die or begin preparing the profile', async () => done || parsePreparing(await readFile(note, 'latin1').catch(() => '')), {timeoutMs, everyMs: 1}).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  const killed = item !== true;
  if (item !== true) {
    child.kill('SIGKILL');
    assert.equal(item.offset, offset, 'the heavy profile is the first being prepared');
  }
  return {...(await exited), killed};
}

void test('a queued profile that kills the daemon while it is prepared: the restart quarantines it and sends the rest', {timeout: 120_000, skip: existsSync(CLI) ? false : 'dist/ is not built: run npm run build (npm test does)'}, async () => {
  // the queued profiles are dated long ago: this Pyroscope, like the repository below, takes any time
  const pyroscope = await startPyroscopeFake({rejectOlderThanMs: 0});
  const {dir, cleanup} = await tempDir('pprof-prepare-crash-');
  const state = join(dir, 'state');
  const goroutine = fixture('goroutine');
  const heavy = heavyAllocsProfile(600_000);

  // the queue a daemon left behind while Pyroscope was down, written by the queue's own code
  const writer = await openSpool(state, {logger: silentLogger(), metrics: createMetrics({defaultMetrics: false})});
  const down = new ScriptedRepository('pyroscope', () => ({status: 'retryable', error: 'down'}));
  writer.activate(new Map([['pyroscope', await writer.attach(down, settings({policy: {initialMs: 60_000, maxMs: 60_000}}))]]));
  await writer.submit(taggedProfile(0, 0, {type: 'allocs', data: heavy, targetId: 'heavy', url: 'http://127.0.0.1:6060/debug/pprof/allocs'}));
  for (let i = 1; i <= 3; i++) await writer.submit(taggedProfile(i, 0, {type: 'goroutine', data: goroutine, targetId: `good-${i}`, url: 'http://127.0.0.1:6060/debug/pprof/goroutine'}));
  await writer.close(0);
  const qdir = join(state, 'queues', 'pyroscope');
  const segment = (await readdir(qdir)).find((f) => f.endsWith('.seg'))!;
  let heavyAt = -1;
  const fh = await open(join(qdir, segment), 'r');
  await scanSegment(fh, (await fh.stat()).size, (e) => {
    if (e.kind === 'record' && e.meta.targetId === 'heavy') heavyAt = e.offset;
  });
  await fh.close();

  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      'repositories:',
      `  - pyroscope: {url: "${pyroscope.url}", reject_older_than: 0s, retry: {initial_backoff: 50ms, max_backoff: 200ms}}`,
      'server: {listen: "127.0.0.1:0"}',
      `state_dir: ${JSON.stringify(state)}`,
      '',
    ].join('\n'),
  );
  const env = {...process.env, NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}`};
  const daemons: DaemonProcess[] = [];
  try {
    const first = startDaemon(['--config', config, '--log-level', 'info'], {env});
    daemons.push(first);
    const died = await dieWhilePreparing(first.child, join(qdir, PREPARING_FILE), heavyAt, 60_000);
    assert.ok(died.killed || died.code !== 0, `the first daemon died preparing the profile (exit ${died.code}, signal ${died.signal}); output:\n${first.output().slice(-2000)}`);
    assert.equal(pyroscope.received.length, 0, 'nothing arrived before the crash');
    assert.deepEqual(parsePreparing(await readFile(join(qdir, PREPARING_FILE), 'latin1')), {segment: segment.slice(0, -4), offset: heavyAt}, 'the crash left the note of the item being prepared');

    const second = startDaemon(['--config', config, '--log-level', 'info'], {env});
    daemons.push(second);
    const running = await second.waitForLog(/^pprof-scraper running$/, 30_000);
    const arrived = await pyroscope.waitFor(3, 30_000);
    assert.deepEqual(arrived.map((s) => s.label('seq')).sort(), ['1', '2', '3'], 'the profiles behind it arrive');
    const line = await second.waitForLog(/^the daemon stopped while preparing this queued profile/);
    assert.equal(line['repository'], 'pyroscope');
    assert.equal(line['type'], 'allocs');
    assert.equal(line['offset'], heavyAt);

    const quarantined = await readdir(join(qdir, 'quarantine'));
    const copy = quarantined.find((f) => f.endsWith('.pb.gz'));
    assert.ok(copy, `the profile is in quarantine/: ${quarantined.join(', ')}`);
    assert.deepEqual(await readFile(join(qdir, 'quarantine', copy)), heavy);
    const metrics = (await httpGet(`http://${String(running['listen'])}/metrics`)).text;
    assert.equal(exposedValue(metrics, 'pprof_scraper_queue_quarantined_total', {repository: 'pyroscope', reason: 'interrupted'}), 1);
    assert.equal(exposedValue(metrics, 'pprof_scraper_queue_length', {repository: 'pyroscope'}), 0);

    const stopped = await second.stop('SIGTERM');
    assert.equal(stopped.code, 0, second.output().slice(-2000));
  } finally {
    await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
    await pyroscope.close();
    await cleanup();
  }
});
