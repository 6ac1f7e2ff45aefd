import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { waitUntil } from '../helpers/wait.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

void test('bad targets end as counted failures with clear reasons; the good ones are scraped on time', { timeout: 60_000 }, async () => {
  const heap = await readFile(join(FIXTURES, 'heap.pb.gz'));
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
  const goodHits: number[] = [];
  const hanging: ServerResponse[] = [];

  const good = createServer((req, res) => {
    if (req.url === '/debug/pprof/heap') {
      goodHits.push(Date.now());
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(heap);
    } else res.writeHead(404).end();
  });
  const goodPort = await listen(good, '127.0.0.31');

  const bad = createServer((req, res) => {
    const kind = req.url?.split('/')[1];
    switch (kind) {
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><html><title>Sign in</title></html>');
        return;
      case 'json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      case 'truncated':
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(heap.subarray(0, heap.length >> 1));
        return;
      case 'bomb':
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bomb);
        return;
      case 'huge': {
        // no Content-Length: the limit must hold while reading
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(256 * 1024, 7);
        let sent = 0;
        const pump = (): void => {
          while (sent < 8 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
      case 'hang':
        hanging.push(res);
        return;
      case 'away':
        res.writeHead(302, { location: `http://127.0.0.31:${goodPort}/debug/pprof/heap` }).end();
        return;
      case 'moved':
        // same host: followed
        res.writeHead(301, { location: '/real/heap' }).end();
        return;
      case 'real':
        res.writeHead(200).end(heap);
        return;
      default:
        res.writeHead(404).end('404 page not found\n');
    }
  });
  const badPort = await listen(bad, '127.0.0.32');
  const closed = createServer();
  const refusedPort = await listen(closed, '127.0.0.33');
  await new Promise((r) => closed.close(r));

  const profefe = await startProfefeFake();
  const stateDir = await mkdtemp(join(tmpdir(), 'pprof-scraper-bad-'));
  const daemon = new Daemon({ logger: silentLogger() });
  const b = `http://127.0.0.32:${badPort}`;
  const kinds = ['html', 'json', 'truncated', 'bomb', 'huge', 'hang', 'away', 'moved', 'nothing'];
  try {
    await daemon.apply(
      parseConfig(
        `
scrape: {interval: 2s, timeout: 1s, max_profile_size: 1MiB, max_decompressed_size: 8MiB}
profiles: {heap: {path: /debug/pprof/heap}}
discovery:
  - static:
      targets:
        - 127.0.0.31:${goodPort}
        - 127.0.0.33:${refusedPort}
${kinds.map((k) => `        - ${b}/${k}`).join('\n')}
repositories:
  - profefe: {url: "${profefe.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${stateDir}
`,
        'bad.yaml',
        { baseDir: '.', env: {} },
      ),
    );
    const reasonOf = (address: string, prefix: string): string | undefined => {
      const t = daemon.report().targets.find((x) => x.address === address && x.profiles[0]?.url.includes(prefix));
      return t?.last?.['heap']?.error;
    };
    const expectations: [string, string, RegExp][] = [
      [`127.0.0.32:${badPort}`, '/html/', /^answered text\/html, not a pprof profile: it starts with "<!DOCTYPE html><html><title>Sign in<\/title><\/html>" \(Content-Type text\/html; charset=utf-8\); is the path right\?$/],
      [`127.0.0.32:${badPort}`, '/json/', /^answered application\/json, not a pprof profile: it starts with "\{\\"status\\":\\"ok\\"\}"/],
      [`127.0.0.32:${badPort}`, '/truncated/', /^truncated gzip body \(\d+ bytes\): the target closed it early$/],
      [`127.0.0.32:${badPort}`, '/bomb/', /^gzip body decompresses to more than max_decompressed_size \(8MiB\): refused/],
      [`127.0.0.32:${badPort}`, '/huge/', /^body is over max_profile_size \(1MiB\): stopped reading at/],
      [`127.0.0.32:${badPort}`, '/hang/', /^no complete answer within 1s \(timeout 1s\)$/],
      [`127.0.0.32:${badPort}`, '/away/', new RegExp(`^HTTP 302 redirect to another host \\(http://127\\.0\\.0\\.31:${goodPort}/debug/pprof/heap\\): not followed`)],
      [`127.0.0.32:${badPort}`, '/nothing/', /^HTTP 404: "404 page not found"$/],
      [`127.0.0.33:${refusedPort}`, '127.0.0.33', /^connection refused \(ECONNREFUSED 127\.0\.0\.33:\d+\): nothing listens there; is the port right\?$/],
    ];
    const movedResult = (): string | undefined =>
      daemon.report().targets.find((t) => t.profiles[0]?.url.includes('/moved/'))?.last?.['heap']?.result;
    await waitUntil('a result for every bad target and the redirected one', () => expectations.every(([a, p]) => reasonOf(a, p) !== undefined) && movedResult() !== undefined, { timeoutMs: 30_000 });
    for (const [address, prefix, pattern] of expectations) assert.match(reasonOf(address, prefix) ?? '', pattern, prefix);

    // a same-host redirect is followed and the profile arrives
    assert.equal(movedResult(), 'success');

    // the good target is scraped at every 2 s tick, none missed and none doubled, while the
    // hanging and the huge ones take their time (loose bounds: a loaded machine is slow, not wrong)
    await waitUntil('five scrapes of the good target', () => goodHits.length >= 5, { timeoutMs: 30_000 });
    for (let i = 1; i < goodHits.length; i++) {
      const gap = (goodHits[i] ?? 0) - (goodHits[i - 1] ?? 0);
      assert.ok(gap > 1000 && gap < 3000, `good target scraped ${gap} ms after the previous one`);
    }
    const skippedText = await daemon.metrics.registry.getSingleMetricAsString('pprof_scraper_skipped_ticks_total');
    assert.doesNotMatch(skippedText, /skipped_ticks_total\{[^}]*\} [1-9]/, 'a tick was skipped');
    const text = await daemon.metrics.registry.getSingleMetricAsString('pprof_scraper_scrapes_total');
    const count = (result: string): number =>
      [...text.matchAll(new RegExp(`result="${result}"\\} (\\d+)`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(count('invalid') >= 3, text);
    assert.ok(count('too_large') >= 2, text);
    assert.ok(count('timeout') >= 1, text);
    assert.ok(count('network') >= 1, text);
    assert.ok(count('redirect') >= 1, text);
    assert.ok(count('http_error') >= 1, text);
    assert.ok(count('success') >= 5, text);
    assert.ok(profefe.received.length >= 5);
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 100 });
    for (const res of hanging) res.destroy();
    bad.closeAllConnections();
    await new Promise((r) => bad.close(r));
    good.closeAllConnections();
    await new Promise((r) => good.close(r));
    await profefe.close();
    await rm(stateDir, { recursive: true, force: true });
  }
});
