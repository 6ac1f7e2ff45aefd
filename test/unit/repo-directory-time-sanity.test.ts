/**
 * A profile's own time names it only when it lies within 10 minutes of the
 * scrape: a target that says the year 39381, or 1970, must not file its
 * profiles there (directory names, S3 keys, profefe's created_at). The
 * daemon says so once per target, not once per profile.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { MAX_PROFILE_TIME_SKEW_MS, profileTime } from '../../src/profiles/profile.js';
import { s3Key } from '../../src/repositories/s3.js';
import { tempDir } from '../helpers/delivery.js';
import { captureLogger } from '../helpers/log.js';
import { parseCreatedAt } from '../helpers/profefe-contract.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { fixtureProfile, scrapedProfile } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

/** A pprof target whose heap profile always says `timeNanos`. */
async function startTarget(timeNanos: bigint): Promise<{ address: string; close: () => Promise<void> }> {
  const p = fixtureProfile('heap');
  p.timeNanos = timeNanos;
  const body = gzipSync(p.encode());
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

void test('profileTime keeps a time within 10 minutes of the scrape, else takes the scrape time', () => {
  const scrape = Date.UTC(2026, 10, 25, 9, 0);
  assert.deepEqual(profileTime(undefined, scrape), { time: scrape });
  assert.deepEqual(profileTime(scrape - MAX_PROFILE_TIME_SKEW_MS, scrape), { time: scrape - MAX_PROFILE_TIME_SKEW_MS });
  assert.deepEqual(profileTime(scrape + MAX_PROFILE_TIME_SKEW_MS, scrape), { time: scrape + MAX_PROFILE_TIME_SKEW_MS });
  assert.deepEqual(profileTime(scrape + MAX_PROFILE_TIME_SKEW_MS + 1, scrape), { time: scrape, ignored: scrape + MAX_PROFILE_TIME_SKEW_MS + 1 });
  assert.deepEqual(profileTime(0, scrape), { time: scrape, ignored: 0 });
});

void test('a target far off in time is filed under the scrape time, said once per target', { timeout: 60_000 }, async () => {
  // the year 2255 (near int64's end) and 1970 (1 ns after the epoch)
  const future = await startTarget(9_000_000_000_000_000_000n);
  const past = await startTarget(1n);
  const profefe = await startProfefeFake();
  const { dir, cleanup } = await tempDir('pprof-time-');
  const { logger, records: lines } = captureLogger();
  const daemon = new Daemon({ logger, metrics: createMetrics({ defaultMetrics: false }) });
  const started = Date.now();
  try {
    await daemon.apply(
      parseConfig(
        `
scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static: {service: skewed, targets: ["${future.address}", "${past.address}"]}
repositories:
  - profefe: {url: "${profefe.url}"}
  - directory: {path: ${JSON.stringify(join(dir, 'files'))}}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`,
        'time.yaml',
        { baseDir: dir },
      ),
    );
    const received = await profefe.waitForProfiles(6, 30_000);
    const folder = join(dir, 'files', 'skewed', 'heap');
    await waitUntil('six profiles in the directory', async () => (await readdir(folder).catch(() => [])).filter((n) => n.endsWith('.json')).length >= 6);
    await daemon.stop({ scrapeDeadlineMs: 1000, sendDeadlineMs: 1000 });
    const ended = Date.now();
    const near = (ms: number): boolean => ms >= started - 1000 && ms <= ended + 1000;
    for (const r of received) {
      assert.ok(r.createdAt !== undefined && near(parseCreatedAt(r.createdAt) ?? 0), `created_at ${r.createdAt} is not the scrape time`);
    }
    for (const name of (await readdir(folder)).filter((n) => n.endsWith('.json'))) {
      const side = JSON.parse(await readFile(join(folder, name), 'utf8')) as { time: string };
      assert.ok(near(Date.parse(side.time)), `${name} says ${side.time}`);
      assert.match(name, new RegExp(`^${new Date(started).getUTCFullYear()}`), `${name} is not named by the scrape time`);
      const key = s3Key('p/', scrapedProfile({ targetId: 't', service: 'skewed', labels: {}, time: Date.parse(side.time), url: '', data: Buffer.alloc(0) }));
      assert.match(key, new RegExp(`^p/skewed/heap/${new Date(started).getUTCFullYear()}/`));
    }
    const warned = lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('profile time is more than 10 minutes from the scrape'));
    assert.deepEqual(warned.map((l) => l['target']).sort(), [future.address, past.address].sort(), 'one line per target, not per profile');
    assert.ok(warned.some((l) => l['profile_time'] === '1970-01-01T00:00:00.000Z'));
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 0, sendDeadlineMs: 0 });
    await future.close();
    await past.close();
    await profefe.close();
    await cleanup();
  }
});
