import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { Secret } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics.js';
import { redactUrl } from '../../src/redact.js';
import { createProfefeRepository } from '../../src/repositories/profefe.js';
import { createPyroscopeRepository } from '../../src/repositories/pyroscope.js';
import type { Repository } from '../../src/repositories/repository.js';
import { resultOfError, resultOfStatus } from '../../src/repositories/http-result.js';
import { resultOfS3Error } from '../../src/repositories/s3.js';
import { openSpool } from '../../src/delivery/spool.js';
import { settings, tempDir } from '../helpers/delivery.js';
import { captureLogger } from '../helpers/log.js';
import { fixture, taggedProfile } from '../helpers/profiles.js';
import { pyroscopeConfig } from '../helpers/pyroscope-fake.js';
import { waitUntil } from '../helpers/wait.js';

describe('redactUrl', () => {
  const cases: [string, string][] = [
    ['http://user:pass@host:10100/api', 'http://user:***@host:10100/api'],
    ['https://token@profiles.example.com', 'https://***@profiles.example.com'],
    // the schema's error for a URL that does not parse
    ['"http://u:p@[bad" is not an http:// or https:// URL', '"http://u:***@[bad" is not an http:// or https:// URL'],
    ['http://u:p@ss@host/x', 'http://u:***@host/x'],
    ['http://u:pa/ss@host', 'http://u:***@host'],
    ['POST http://u:s3cret@127.0.0.1:9/api/0/profiles: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9', 'POST http://u:***@127.0.0.1:9/api/0/profiles: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9'],
    ['{"url":"http://k:v@h/p"}', '{"url":"http://k:***@h/p"}'],
    ['next: http://a/?to=http://u:p@h/x', 'next: http://a/?to=http://u:***@h/x'],
    // no scheme: user:password@host, as a static target may be written
    ['host "admin:hunter2@10.0.0.6" is not a hostname', 'host "admin:***@10.0.0.6" is not a hostname'],
    ['admin:hunter2@[::1]:6060,', 'admin:***@[::1]:6060,'],
    // left alone: no credentials
    ['http://10.0.0.5:6060/debug/pprof/heap', 'http://10.0.0.5:6060/debug/pprof/heap'],
    ['http://host/path?mail=a@b.c', 'http://host/path?mail=a@b.c'],
    ['ops@example.com', 'ops@example.com'],
    ['nginx:1.25@sha256:0123abcd', 'nginx:1.25@sha256:0123abcd'],
    ['s3://bucket/prefix/', 's3://bucket/prefix/'],
  ];
  for (const [input, shown] of cases) {
    test(input, () => assert.equal(redactUrl(input), shown));
  }
});

describe('repository errors carry no URL credentials', () => {
  test('resultOfError, resultOfStatus and the S3 error text mask them', () => {
    const refused = Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const a = resultOfError(refused, 'POST http://u:s3cret@127.0.0.1:1/api/0/profiles');
    assert.equal(a.status === 'retryable' && a.error, 'POST http://u:***@127.0.0.1:1/api/0/profiles: ECONNREFUSED: connect ECONNREFUSED');
    const b = resultOfStatus(502, '<html>bad gateway for http://u:s3cret@upstream/push</html>', undefined);
    assert.ok(b.status === 'retryable' && !b.error.includes('s3cret') && b.error.includes('u:***@upstream'), JSON.stringify(b));
    const c = resultOfS3Error(Object.assign(new Error('getaddrinfo ENOTFOUND bucket.http://k:s3cret@minio'), { name: 'Error' }), 'PUT s3://b/');
    assert.ok(c.status === 'retryable' && !c.error.includes('s3cret'), JSON.stringify(c));
  });

  // The daemon logs every failed send while a repository is down. A URL
  // with user:pass@ in it must not reach one of those lines.
  test('a profefe and a pyroscope repository failing on a loopback server: the log never shows the password', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' });
      // as a proxy does: its error page names what it was asked for
      res.end(`upstream unavailable: http://user:s3cret-pw@${req.headers.host ?? ''}${req.url ?? ''}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));

    const common = { queue: { max_size: 1e9, max_age: 1e9 }, retry: { initial_backoff: 10, max_backoff: 20 }, timeout: 5000 };
    const repos: Repository[] = [
      await createProfefeRepository('answers-503', { url: `http://user:s3cret-pw@127.0.0.1:${port}`, ...common }),
      await createProfefeRepository('refused', { url: `http://user:s3cret-pw@127.0.0.1:${closedPort}`, ...common }),
      // reject_older_than 0: the queued profile is dated long ago, and a failed send is what is wanted here
      await createPyroscopeRepository('pyroscope-refused', pyroscopeConfig(`http://user:s3cret-pw@127.0.0.1:${closedPort}`, { ...common, reject_older_than: 0 })),
    ];
    const { dir, cleanup } = await tempDir('pprof-redact-');
    const { logger, records: lines } = captureLogger();
    const metrics = createMetrics({ defaultMetrics: false });
    const spool = await openSpool(dir, { logger, metrics, ackFlushMs: 10 });
    try {
      const handles = new Map();
      for (const repo of repos) handles.set(repo.name, await spool.attach(repo, settings({ policy: { initialMs: 10, maxMs: 20 } })));
      spool.activate(handles);
      // goroutine: a type Pyroscope takes as it comes, with no delta baseline first
      const data = fixture('goroutine');
      await spool.submit(taggedProfile(1, 0, { data, type: 'goroutine' }));
      const retried = (name: string): number => lines.filter((l) => l['repository'] === name && typeof l['error'] === 'string').length;
      await waitUntil('two failed sends logged per repository', () => repos.every((r) => retried(r.name) >= 2));
      const text = lines.map((l) => JSON.stringify(l)).join('\n');
      assert.ok(!text.includes('s3cret-pw'), text);
      // what was masked is still there to read: the user, the host, the answer
      assert.match(text, /user:\*\*\*@127\.0\.0\.1/);
      assert.match(text, /HTTP 503: upstream unavailable/);
    } finally {
      await spool.close(0);
      await Promise.all(repos.map((r) => r.close()));
      await new Promise<void>((r) => server.close(() => r()));
      await cleanup();
    }
  });

  test('a Secret never prints, whatever prints it', () => {
    const s = new Secret('s3cret-pw');
    assert.equal(`${String(s)} ${JSON.stringify({ s })}`, '<secret> {"s":"<secret>"}');
  });
});
