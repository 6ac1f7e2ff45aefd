import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseConfig } from '../../src/config/index.js';
import { BodyError, checkTraceBody, traceVersion } from '../../src/scrape/body.js';
import { createTargetClient } from '../../src/http/index.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import type { ScraperOptions } from '../../src/scrape/scraper.js';
import { buildTargets } from '../../src/targets/index.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** A 16-byte header as Go writes it: `go 1.N trace`, then NULs. */
function header(minor: number): Buffer {
  const text = Buffer.from(`go 1.${minor} trace`, 'latin1');
  return Buffer.concat([text, Buffer.alloc(16 - text.length)]);
}

/** A header and some event bytes after it (the check reads the header only). */
function trace(minor: number): Buffer {
  return Buffer.concat([header(minor), Buffer.from([0x41, 0x01, 0x8c, 0xcb, 0x91, 0xd0, 0x81, 0xd2, 0x07, 0xcd])]);
}

function refused(body: Buffer, pattern: RegExp, contentType?: string): void {
  assert.throws(
    () => checkTraceBody(body, contentType),
    (err: unknown) => {
      assert.ok(err instanceof BodyError, String(err));
      assert.equal(err.kind, 'invalid');
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('Go execution trace header', () => {
  const versions: [string, Buffer, number | undefined][] = [
    ['Go 1.5 (the first traces)', header(5), 5],
    ['Go 1.19', header(19), 19],
    ['Go 1.22 (the new trace format)', header(22), 22],
    ['Go 1.25', header(25), 25],
    ['a three-digit minor version', header(100), 100],
    ['no Go had traces before 1.5', header(4), undefined],
    ['text after the name instead of NULs', Buffer.from('go 1.19 traceXYZ', 'latin1'), undefined],
    ['a leading zero', Buffer.from('go 1.019 trace\0\0', 'latin1'), undefined],
    ['Go 2', Buffer.from('go 2.0 trace\0\0\0\0', 'latin1'), undefined],
    ['15 bytes of a header', header(19).subarray(0, 15), undefined],
  ];
  for (const [name, body, want] of versions) {
    test(`${name}: ${want === undefined ? 'not a trace' : `version 1.${want}`}`, () => {
      assert.equal(traceVersion(body), want);
    });
  }

  test('reads the header of a slice of a larger buffer where the slice starts', () => {
    const pool = Buffer.concat([Buffer.from('xxxx'), trace(22)]);
    assert.equal(traceVersion(pool.subarray(4)), 22);
  });
});

describe('trace body check', () => {
  test('a Go 1.19 trace passes and is kept byte for byte (no gzip, no decoding)', () => {
    const body = trace(19);
    assert.equal(checkTraceBody(body, 'application/octet-stream'), body);
  });

  test('a Go 1.22-style trace passes', () => {
    const body = trace(22);
    assert.equal(checkTraceBody(body, undefined), body);
  });

  test('HTML is refused, saying what came back', () => {
    refused(Buffer.from('<!DOCTYPE html><html><body>Login</body></html>'), /^body is not a Go execution trace \(no "go 1\.N trace" header\): it starts with "<!DOCTYPE html>.*\(Content-Type text\/html\); is the path right\?/, 'text/html');
  });

  test('JSON is refused', () => {
    refused(Buffer.from('{"error":"not found"}'), /not a Go execution trace.*starts with "\{\\"error\\"/);
  });

  test('a pprof profile (gzip) is refused as one', async () => {
    refused(await readFile(join(FIXTURES, 'cpu.pb.gz')), /not a Go execution trace .*: it is gzip-compressed \(a pprof profile\?\)/);
  });

  test('a raw pprof protobuf is refused', async () => {
    refused(gunzipSync(await readFile(join(FIXTURES, 'heap.pb.gz'))), /^body is not a Go execution trace/);
  });

  test('a truncated header is refused as truncated', () => {
    refused(header(19).subarray(0, 10), /^truncated Go execution trace \(10 bytes, shorter than its 16-byte header\)/);
  });

  test('a header with nothing after it is refused', () => {
    refused(header(22), /header and nothing after it/);
  });

  test('an empty body is refused', () => {
    refused(Buffer.alloc(0), /not a Go execution trace.*was empty/);
  });
});

describe('scraping the trace type', () => {
  type Answer = { status?: number; type?: string; body: Buffer | string };
  let answer: Answer = { body: '' };
  let lastHeaders: IncomingHttpHeaders = {};
  let lastUrl = '';
  let server: Server;
  let address = '';

  before(async () => {
    server = createServer((req, res) => {
      lastHeaders = req.headers;
      lastUrl = req.url ?? '';
      res.writeHead(answer.status ?? 200, { 'content-type': answer.type ?? 'application/octet-stream' });
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function scrape(options: Partial<ScraperOptions> = {}) {
    const config = parseConfig(
      `profiles: {trace: {path: /debug/pprof/trace, seconds: 2}}\ndiscovery:\n  - static: {service: traced, targets: [${address}]}\nrepositories:\n  - directory: {path: ./unused}\n`,
      'trace.yaml',
      { baseDir: '.', env: {} },
    ).config;
    const [target] = buildTargets(config, [{ source: 0, provider: 'static', targets: [{ address, labels: {} }] }]).targets;
    assert.ok(target);
    const client = await createTargetClient({});
    try {
      return await scrapeProfile(target, target.profiles[0]!, client, { timeout: 5000, maxProfileSize: 1 << 20, maxDecompressedSize: 4 << 20, ...options }, AbortSignal.timeout(10_000));
    } finally {
      await client.close();
    }
  }

  test('a trace is taken as it is: type trace, the scrape start as its time, its window as its duration, no samples', async () => {
    const body = trace(22);
    answer = { body };
    const before = Date.now();
    const outcome = await scrape();
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.reason);
    assert.equal(lastUrl, '/debug/pprof/trace?seconds=2');
    assert.equal(lastHeaders['accept-encoding'], undefined, 'no gzip asked for: a trace is taken as Go writes it');
    const p = outcome.profile;
    assert.equal(p.type, 'trace');
    assert.deepEqual(p.data, body);
    assert.equal(p.sampleCount, 0);
    assert.equal(p.durationMs, 2000);
    assert.equal(p.bodyTime, undefined);
    assert.ok(p.time >= before && p.time <= Date.now(), 'filed under the scrape start');
    assert.equal(outcome.bytes, body.length);
  });

  test('an HTML answer on the trace path is refused', async () => {
    answer = { type: 'text/html; charset=utf-8', body: '<html><body>Login</body></html>' };
    const outcome = await scrape();
    assert.equal(outcome.ok, false);
    assert.equal(outcome.ok ? '' : outcome.result, 'invalid');
    assert.match(outcome.ok ? '' : outcome.reason, /^answered text\/html, not a Go execution trace: it starts with "<html>/);
  });

  test('a pprof answer on the trace path is refused, even as gzip', async () => {
    answer = { body: await readFile(join(FIXTURES, 'heap.pb.gz')) };
    const outcome = await scrape();
    assert.equal(outcome.ok ? '' : outcome.result, 'invalid');
    assert.match(outcome.ok ? '' : outcome.reason, /not a Go execution trace .*gzip-compressed \(a pprof profile\?\)/);
  });

  test('an empty answer says a trace was expected', async () => {
    answer = { body: '' };
    const outcome = await scrape();
    assert.match(outcome.ok ? '' : outcome.reason, /^HTTP 200 with an empty body, not a Go execution trace$/);
  });

  test('Go\'s 500 "Could not enable tracing" (another trace runs) is busy, not an error of the target', async () => {
    answer = { status: 500, type: 'text/plain; charset=utf-8', body: 'Could not enable tracing: runtime error: tracing is already enabled\n' };
    const outcome = await scrape();
    assert.equal(outcome.ok ? '' : outcome.result, 'busy');
    assert.match(outcome.ok ? '' : outcome.reason, /another execution trace of this process is running/);
  });

  test('max_profile_size bounds a trace', async () => {
    answer = { body: Buffer.concat([header(19), Buffer.alloc(4096, 7)]) };
    const outcome = await scrape({ maxProfileSize: 1024 });
    assert.equal(outcome.ok ? '' : outcome.result, 'too_large');
  });
});
