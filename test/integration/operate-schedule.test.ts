import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { Daemon } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { Reloader } from '../../src/reload.js';
import { captureLogger } from '../helpers/log.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { startFakePprofTarget, startRecordingProxy } from '../helpers/operate.js';
import type { FakePprofTarget } from '../helpers/operate.js';
import { waitUntil } from '../helpers/wait.js';

const INTERVAL_MS = 1000;
const STALL_LIMIT_MS = 250;

function config(targets: Record<string, FakePprofTarget>, profefeUrl: string, repoTimeout: string, stateDir: string): string {
  const list = Object.entries(targets)
    .map(([service, t]) => `        - {address: "${t.address}", service: ${service}}`)
    .join('\n');
  return `scrape: {interval: 1s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      targets:
${list}
repositories:
  - profefe: {url: "${profefeUrl}", timeout: ${repoTimeout}}
server: {listen: "127.0.0.1:0"}
state_dir: "${stateDir}"
`;
}

function gaps(hits: readonly { at: number }[]): number[] {
  return hits.slice(1).map((h, i) => h.at - (hits[i] as { at: number }).at);
}

test('a reload that adds one target and removes another leaves the others on their schedule, and loses no profile', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-schedule-'));
  const a = await startFakePprofTarget();
  // b answers slowly, so its scrape is in flight when the reload comes
  const b = await startFakePprofTarget({ delayMs: 600 });
  const c = await startFakePprofTarget();
  const d = await startFakePprofTarget();
  const profefe = await startProfefeFake();
  // profiles stay on their way to the repository a while: the swap must not drop them
  const slowLink = await startRecordingProxy(new URL(profefe.url).host, { delayMs: 400 });
  const repoUrl = `http://${slowLink.address}`;
  const log = captureLogger('info');
  const logger = log.logger;
  const metrics = createMetrics({ defaultMetrics: false });
  const daemon = new Daemon({ logger, metrics });
  const file = join(dir, 'config.yaml');
  const reloader = new Reloader({ daemon, path: file, logger, metrics });
  let reloadedAt = 0;
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  try {
    try {
      await writeFile(file, config({ a, b, c }, repoUrl, '10s', join(dir, 'state')));
      assert.equal((await reloader.reload('start')).status, 'applied');
      await waitUntil('two scrapes of a, b and c', () => [a, b, c].every((t) => t.hits.length >= 2));
      // reload while b's scrape is in flight
      await waitUntil('a scrape of b and a send in flight', () => b.hits.length > b.answered() && slowLink.requests.some((r) => r.endedAt === undefined));
      const bInFlight = b.hits.length;
      await writeFile(file, config({ a, b, d }, repoUrl, '11s', join(dir, 'state')));
      reloadedAt = Date.now();
      const result = await reloader.reload('http');
      assert.equal(result.status, 'applied');
      assert.ok(result.status === 'applied');
      assert.deepEqual(result.report.targets, { added: 1, removed: 1, kept: 2 });
      assert.deepEqual(result.report.repositories.swapped, ['profefe']);
      assert.deepEqual(result.report.providers, { started: 1, stopped: 1, kept: 0 });
      const logged = log.find(/^config reloaded$/);
      assert.equal(logged.length, 1);
      assert.deepEqual(logged[0]?.['targets'], { added: 1, removed: 1, kept: 2 });

      await waitUntil('four more scrapes of a, b and d', () => [a, b, d].every((t) => t.hits.filter((h) => h.at > reloadedAt).length >= 4), { timeoutMs: 20_000 });
      await waitUntil('the in-flight scrape of b answered', () => b.answered() >= bInFlight);
      const cAfter = c.hits.filter((h) => h.at > reloadedAt + 50);
      assert.deepEqual(cAfter, [], 'the removed target is not scraped after the reload');

      // every gap of a kept target is one interval: no extra tick (a short gap), no missed one (a double gap)
      stalls.disable();
      const stalledMs = stalls.max / 1e6;
      if (stalledMs > STALL_LIMIT_MS) {
        // the daemon runs in this process: a starved event loop misses ticks by itself
        t.diagnostic(`the event loop stalled ${Math.round(stalledMs)} ms (an overloaded machine): tick gaps not judged`);
      } else {
        for (const [name, target] of Object.entries({ a, b })) {
          for (const g of gaps(target.hits)) {
            assert.ok(g > INTERVAL_MS * 0.6 && g < INTERVAL_MS * 1.4, `${name}: gap of ${g} ms between scrapes (hits at ${target.hits.map((h) => h.at - reloadedAt).join(', ')} ms from the reload)`);
          }
        }
      }
    } finally {
      await reloader.close();
      await daemon.stop();
    }
    // stop() drained the scrapes and handed every profile over
    const answered = [a, b, c, d].reduce((n, t) => n + t.answered(), 0);
    assert.ok(answered > 0);
    const received = profefe.received.length;
    assert.equal(received, answered, `every answered scrape reached the repository (${received} of ${answered})`);
    assert.ok(slowLink.requests.some((r) => r.startedAt < reloadedAt && (r.endedAt ?? Infinity) > reloadedAt), 'a send was on its way during the swap');
    for (const [service, t] of Object.entries({ a, b, c, d })) {
      assert.equal(profefe.received.filter((p) => p.service === service).length, t.answered(), `service ${service}`);
    }
  } finally {
    await Promise.all([a.close(), b.close(), c.close(), d.close(), slowLink.close(), profefe.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});
