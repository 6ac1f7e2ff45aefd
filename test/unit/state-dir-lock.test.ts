import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMetrics } from '../../src/metrics.js';
import { openSpool } from '../../src/delivery/index.js';
import type { Spool } from '../../src/delivery/index.js';
import { captureLogger } from '../helpers/log.js';
import { waitUntil } from '../helpers/wait.js';

const deps = () => ({ logger: captureLogger().logger, metrics: createMetrics({ defaultMetrics: false }) });

async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-lock-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function writeLock(dir: string, pid: number): Promise<string> {
  const lock = join(dir, 'queues', '.lock');
  await mkdir(join(dir, 'queues'), { recursive: true });
  await writeFile(lock, `${pid}\n`);
  return lock;
}

void test('two openSpool on one state_dir at once: exactly one opens it', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const results = await Promise.allSettled([openSpool(dir, deps()), openSpool(dir, deps())]);
    const opened = results.filter((r): r is PromiseFulfilledResult<Spool> => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(opened.length, 1, 'one opens it');
    assert.equal(refused.length, 1, 'the other is refused');
    assert.equal((refused[0]?.reason as Error).name, 'StateDirInUseError');
    await opened[0]?.value.close(0);
    // once closed, the folder is free again
    await (await openSpool(dir, deps())).close(0);
  } finally {
    await cleanup();
  }
});

// A program that does nothing for a while, and is neither Node.js nor pprof-scraper.
const SLEEP = ['/bin/sleep', '/usr/bin/sleep'].find((p) => spawnSync(p, ['0']).status === 0);

void test('a lock naming a process that is not a daemon is taken over', async (t) => {
  const pid1 = (() => {
    try {
      return readFileSync('/proc/1/cmdline', 'utf8').split('\0')[0] ?? '';
    } catch {
      return undefined;
    }
  })();
  const sleeper = SLEEP ? spawn(SLEEP, ['60'], { stdio: 'ignore' }) : undefined;
  t.after(() => sleeper?.kill());
  const cases: { name: string; pid: number; skip?: string }[] = [
    // a container's init, or the pid a daemon had in the previous container
    { name: 'pid 1', pid: 1, ...(pid1 !== undefined && /^node/.test(basename(pid1)) ? { skip: 'pid 1 is Node.js here' } : {}) },
    { name: 'a pid no process has', pid: spawnSync(process.execPath, ['-e', '0']).pid },
    { name: 'a pid another program reused', pid: sleeper?.pid ?? 0, ...(sleeper ? {} : { skip: 'no sleep(1) here' }) },
    { name: 'no pid at all (a crash while it was written)', pid: Number.NaN },
  ];
  for (const c of cases) {
    await t.test(c.name, { skip: c.skip ?? false }, async () => {
      const { dir, cleanup } = await tempDir();
      try {
        const lock = await writeLock(dir, c.pid);
        if (Number.isNaN(c.pid)) await writeFile(lock, '');
        const spool = await openSpool(dir, deps());
        assert.equal((await readFile(lock, 'utf8')).trim(), String(process.pid));
        await spool.close(0);
        assert.deepEqual((await readdir(join(dir, 'queues'))).filter((n) => n.startsWith('.lock')), [], 'no lock, claim or temporary file is left');
      } finally {
        await cleanup();
      }
    });
  }
});

void test('a lock that is not ours is left alone at close', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const spool = await openSpool(dir, deps());
    const lock = await writeLock(dir, process.ppid);
    await spool.close(0);
    assert.equal((await readFile(lock, 'utf8')).trim(), String(process.ppid));
  } finally {
    await cleanup();
  }
});

const SPOOL_INDEX = fileURLToPath(new URL('../../src/delivery/index.ts', import.meta.url));
const METRICS = fileURLToPath(new URL('../../src/metrics.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));

/**
 * A process that waits until `at` (ms since the epoch), opens the spool,
 * prints what happened, and holds the folder until its stdin closes.
 */
function opener(dir: string, at: number): { child: ChildProcess; line: Promise<string> } {
  const script = `
    import { openSpool } from ${JSON.stringify(SPOOL_INDEX)};
    import { createMetrics } from ${JSON.stringify(METRICS)};
    import pino from 'pino';
    while (Date.now() < ${at}) { /* every process starts at the same instant */ }
    try {
      const spool = await openSpool(${JSON.stringify(dir)}, { logger: pino({ level: 'silent' }), metrics: createMetrics({ defaultMetrics: false }) });
      process.stdout.write('opened\\n');
      process.stdin.resume();
      process.stdin.on('end', () => void spool.close(0));
    } catch (err) {
      process.stdout.write(err.name + ': ' + err.message + '\\n');
    }
  `;
  const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const line = new Promise<string>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`opener exited (${code}) before a result: ${out}`)));
  });
  return { child, line };
}

for (const start of ['an empty state_dir', 'a stale lock'] as const) {
  void test(`daemons starting together on ${start}: exactly one gets it, the others name it`, { timeout: 60_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    const children: ChildProcess[] = [];
    try {
      await mkdir(join(dir, 'queues'), { recursive: true });
      if (start === 'a stale lock') await writeLock(dir, spawnSync(process.execPath, ['-e', '0']).pid);
      // time for every process to load before the instant they all open it
      const at = Date.now() + 4_000;
      const openers = Array.from({ length: 6 }, () => opener(dir, at));
      children.push(...openers.map((o) => o.child));
      const lines = await Promise.all(openers.map((o) => o.line));
      const winners = openers.filter((_, i) => lines[i] === 'opened');
      assert.equal(winners.length, 1, lines.join('\n'));
      const winner = winners[0]?.child.pid;
      for (const l of lines.filter((x) => x !== 'opened')) assert.match(l, new RegExp(`^StateDirInUseError: .* in use by another pprof-scraper \\(pid ${winner}`));
      assert.equal((await readFile(join(dir, 'queues', '.lock'), 'utf8')).trim(), String(winner));
    } finally {
      for (const c of children) c.stdin?.end();
      await waitUntil('the openers to exit', () => children.every((c) => c.exitCode !== null || c.signalCode !== null), { timeoutMs: 15_000, everyMs: 50 });
      await cleanup();
    }
  });
}
