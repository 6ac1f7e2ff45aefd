import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { metricSum } from '../helpers/metrics.js';
import { fixture } from '../helpers/profiles.js';
import { startPyroscopeFake } from '../helpers/pyroscope-fake.js';
import { sampleBomb } from '../helpers/sample-bomb.js';
import { waitUntil } from '../helpers/wait.js';

async function serve(body: Buffer, host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

void test('a sample-bomb target is a failed scrape naming scrape.max_samples; no repository gets it, the directory included', { timeout: 60_000 }, async () => {
  const good = await serve(fixture('goroutine'), '127.0.0.41');
  const bomb = await serve(sampleBomb(), '127.0.0.42');
  // the fixture's own time is days old: this Pyroscope, like the repository below, takes any time
  const pyroscope = await startPyroscopeFake({ rejectOlderThanMs: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-bomb-'));
  const daemon = new Daemon({ logger: silentLogger() });
  try {
    await daemon.apply(
      parseConfig(
        `
scrape: {interval: 1s, timeout: 5s}
profiles: {goroutine: {path: /debug/pprof/goroutine}}
discovery:
  - static:
      targets:
        - {address: "127.0.0.41:${good.port}", service: good}
        - {address: "127.0.0.42:${bomb.port}", service: bomb}
repositories:
  - pyroscope: {url: "${pyroscope.url}", reject_older_than: 0s}
  - directory: {path: ${join(dir, 'profiles')}}
server: {listen: "127.0.0.1:0"}
state_dir: ${join(dir, 'state')}
`,
        'bomb.yaml',
        { baseDir: '.', env: {} },
      ),
    );
    const lastOf = (service: string) => daemon.report().targets.find((t) => t.service === service)?.last?.['goroutine'];
    const goodFiles = async (): Promise<string[]> => (await readdir(join(dir, 'profiles', 'good', 'goroutine')).catch(() => [])).filter((f) => f.endsWith('.pb.gz'));
    const failed = await waitUntil('a result for the bomb', () => lastOf('bomb'), { timeoutMs: 30_000 });
    assert.equal(failed.result, 'too_large');
    assert.equal(failed.error, 'profile has 3000000 samples, more than scrape.max_samples (1000000): refused (a sample bomb, or raise the limit)');

    // the good target's profiles keep arriving in both repositories
    // (the fixture's own time names its file, so each scrape of the good target writes the same one)
    await waitUntil('the good target in both repositories', async () => (await goodFiles()).length >= 1 && pyroscope.received.length >= 2, { timeoutMs: 30_000 });
    await waitUntil('a second refused scrape of the bomb', async () => (await metricSum(daemon.metrics.scrapes, { result: 'too_large' })) >= 2, { timeoutMs: 15_000 });
    assert.deepEqual(await readdir(join(dir, 'profiles')), ['good']);
    assert.deepEqual([...new Set(pyroscope.received.map((s) => s.label('service_name')))], ['good']);
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 100 });
    for (const s of [good.server, bomb.server]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await pyroscope.close();
    await rm(dir, { recursive: true, force: true });
  }
});
