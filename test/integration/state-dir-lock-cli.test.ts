import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, started, startDaemon } from '../helpers/cli.js';
import { logRecords } from '../helpers/operate.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const address = server.address();
  await new Promise((ok) => server.close(ok));
  return typeof address === 'object' && address ? address.port : 0;
}

void test('a second daemon on the same config exits 1 at once, naming the one running', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-lock-cli-'));
  // one file for both, as two units or containers started from one config would be
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `scrape: {interval: 60s}\ndiscovery:\n  - static: {targets: ["127.0.0.1:9"]}\nrepositories:\n  - directory: {path: ${join(dir, 'profiles')}}\nserver: {listen: "127.0.0.1:${await freePort()}"}\nstate_dir: ${join(dir, 'state')}\n`,
  );
  const first = startDaemon(['--config', config, '--no-watch-config']);
  try {
    await started(first);
    const began = Date.now();
    const second = await runCli(['run', '--config', config, '--no-watch-config'], { timeoutMs: 60_000 });
    const tookMs = Date.now() - began;
    assert.equal(second.code, 1, second.stdout + second.stderr);
    const fatal = logRecords(second.stdout).find((r) => r['msg'] === 'could not start');
    assert.ok(fatal, second.stdout + second.stderr);
    assert.match(String(fatal['error']), new RegExp(`in use by another pprof-scraper \\(pid ${first.pid}, see .*\\.lock\\)`));
    // loading the CLI is most of it; nothing waits on a timer
    assert.ok(tookMs < 15_000, `took ${tookMs} ms`);
    assert.equal((await readFile(join(dir, 'state', 'queues', '.lock'), 'utf8')).trim(), String(first.pid), "the lock is still the first one's");
    assert.deepEqual(await first.stop('SIGTERM'), { code: 0, signal: null }, first.output());
    // the first removes its lock on the way out
    await assert.rejects(readFile(join(dir, 'state', 'queues', '.lock')), { code: 'ENOENT' });
  } finally {
    await first.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
