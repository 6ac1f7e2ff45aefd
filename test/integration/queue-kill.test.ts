/**
 * The daemon as operators run it (`node dist/cli/index.js run --config …`),
 * killed with SIGKILL while its repository is down, then started again:
 * every profile it had taken arrives once the repository is back.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {open, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {fileURLToPath} from 'node:url';
import {scanSegment} from '../../src/delivery/record.js';
import {startUniqueProfileTarget, tempDir, timeNanosOf} from '../helpers/delivery.js';
import {startProfefeFake} from '../helpers/profefe-fake.js';
import {waitUntil} from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

function startDaemon(config: string, log: string[]): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'run', '--config', config, '--log-level', 'info'], {stdio: ['ignore', 'pipe', 'pipe']});
  child.stdout.setEncoding('utf8').on('data', (s: string) => log.push(...s.split('\n').filter(Boolean)));
  child.stderr.setEncoding('utf8').on('data', (s: string) => log.push(...s.split('\n').filter(Boolean)));
  return child;
}

/** The profile times (ms) of every whole record in a queue folder's segments. */
async function durableTimes(queueDir: string): Promise<Set<number>> {
  const times = new Set<number>();
  for (const f of (await readdir(queueDir)).filter((n) => n.endsWith('.seg'))) {
    const fh = await open(join(queueDir, f), 'r');
    await scanSegment(fh, (await fh.stat()).size, (e) => {
      if (e.kind === 'record') times.add(e.meta.time);
    });
    await fh.close();
  }
  return times;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

void test('kill -9 during a repository outage, restart: every profile taken arrives, once', {timeout: 90_000, skip: existsSync(CLI) ? false : 'dist/ is not built: run npm run build (npm test does)'}, async () => {
  const target = await startUniqueProfileTarget();
  const profefe = await startProfefeFake();
  const {dir, cleanup} = await tempDir('pprof-kill-');
  let isDown = true;
  profefe.setFailure(() => (isDown ? {status: 503, body: 'down for maintenance'} : undefined));
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      'scrape: {interval: 1s, timeout: 5s}',
      'profiles:',
      '  heap: {path: /debug/pprof/heap}',
      '  goroutine: {path: /debug/pprof/goroutine}',
      'discovery:',
      `  - static: {service: kill-test, targets: ["${target.address}"]}`,
      'repositories:',
      `  - profefe: {url: "${profefe.url}", retry: {initial_backoff: 50ms, max_backoff: 200ms}}`,
      'server: {listen: "127.0.0.1:0"}',
      `state_dir: ${JSON.stringify(join(dir, 'state'))}`,
      '',
    ].join('\n'),
  );
  const log: string[] = [];
  let daemon = startDaemon(config, log);
  try {
    await waitUntil('10 profiles served to the first daemon', () => target.served.length >= 10, {timeoutMs: 20_000});
    const queueDir = join(dir, 'state', 'queues', 'profefe');
    await waitUntil('10 profiles durable on disk', async () => (await durableTimes(queueDir).catch(() => new Set())).size >= 10, {timeoutMs: 20_000});
    daemon.kill('SIGKILL');
    await exited(daemon);
    // what the killed daemon had made durable, read from its queue on disk
    const onDisk = await durableTimes(queueDir);
    assert.ok(onDisk.size >= 5, `${onDisk.size} profiles durable at the kill`);
    // a profile's time is its TimeNanos in ms, give or take the last ms
    const near = (set: Set<number>, ms: number): boolean => set.has(ms) || set.has(ms - 1) || set.has(ms + 1);
    const servedMs = new Set(target.served.map((s) => Number(s.timeNanos / 1_000_000n)));
    assert.ok([...onDisk].every((t) => near(servedMs, t)), 'the queue on disk holds profiles the target served');
    assert.equal(profefe.received.length, 0, 'nothing could arrive during the outage');

    const restartedAt = Date.now();
    daemon = startDaemon(config, log);
    const servedAtRestart = target.served.length;
    await waitUntil('profiles served to the second daemon', () => target.served.length >= servedAtRestart + 4, {timeoutMs: 20_000});
    isDown = false;
    const upAt = Date.now();
    // what the first daemon made durable, and what the second one was served until now
    const expected = target.served.filter((s) => near(onDisk, Number(s.timeNanos / 1_000_000n)) || (s.at > restartedAt && s.at < upAt)).map((s) => s.timeNanos);
    const arrived = async (): Promise<bigint[]> => Promise.all(profefe.received.map((r) => timeNanosOf(r.body)));
    await waitUntil(`all ${expected.length} profiles, made durable before the kill or taken after the restart, to arrive`, async () => {
      const got = new Set(await arrived());
      return expected.every((t) => got.has(t));
    }, {timeoutMs: 30_000});

    daemon.kill('SIGTERM');
    await exited(daemon);
    const times = await arrived();
    const servedSet = new Set(target.served.map((s) => s.timeNanos));
    assert.ok(times.every((t) => servedSet.has(t)), 'only profiles the target served arrive');
    const counts = new Map<bigint, number>();
    for (const t of times) counts.set(t, (counts.get(t) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no profile arrives twice (no send was cut short: the repository answered 503 at once)');
    assert.ok(log.some((l) => l.includes('queue backlog found on disk')), 'the second daemon found the backlog');
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGKILL');
      await exited(daemon);
    }
    await target.close();
    await profefe.close();
    await cleanup();
  }
});
