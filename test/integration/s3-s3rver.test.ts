/**
 * The S3 repository against s3rver (an S3 implementation from npm) on
 * loopback: objects land under the key layout with the labels as metadata,
 * read back byte for byte; a 503 SlowDown (from a proxy in front of s3rver)
 * is retried by the queue until the object lands.
 */
import assert from 'node:assert/strict';
import {createServer, request as httpRequest} from 'node:http';
import type {AddressInfo} from 'node:net';
import {join} from 'node:path';
import {test} from 'node:test';
import {GetObjectCommand, HeadObjectCommand, S3Client} from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type {S3Config} from '../../src/config/index.js';
import {createMetrics} from '../../src/metrics.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {createS3Repository, s3Key} from '../../src/repositories/s3.js';
import {openSpool} from '../../src/delivery/spool.js';
import {settings, tempDir} from '../helpers/delivery.js';
import {captureLogger} from '../helpers/log.js';
import {metricSum} from '../helpers/metrics.js';
import {decodePprof} from '../helpers/pprof-stacks.js';
import {fixture, scrapedProfile} from '../helpers/profiles.js';
import {waitUntil} from '../helpers/wait.js';

// s3rver's fixed credentials, through the AWS chain's environment step
process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
delete process.env['AWS_PROFILE'];
delete process.env['AWS_SESSION_TOKEN'];

const BUCKET = 'profiles';

async function startS3rver(directory: string): Promise<{url: string; close: () => Promise<void>}> {
  const server = new S3rver({address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{name: BUCKET}]});
  const {port} = await server.run();
  return {url: `http://127.0.0.1:${port}`, close: () => server.close()};
}

/** Forwards to s3rver byte for byte; `fail(n)` may answer the n-th PUT itself. */
async function startProxy(upstream: string, fail: (n: number) => {status: number; body: string} | undefined): Promise<{url: string; puts: () => number; close: () => Promise<void>}> {
  const up = new URL(upstream);
  let puts = 0;
  const server = createServer((req, res) => {
    const failure = req.method === 'PUT' ? fail(puts++) : undefined;
    if (failure) {
      req.resume();
      res.writeHead(failure.status, {'content-type': 'application/xml'});
      res.end(failure.body);
      return;
    }
    const out = httpRequest({host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers}, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    puts: () => puts,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function s3Config(endpoint: string, over: Partial<S3Config> = {}): S3Config {
  return {bucket: BUCKET, prefix: 'pprof/', region: 'us-east-1', endpoint, force_path_style: true, queue: {max_size: 1e9, max_age: 1e9}, retry: {initial_backoff: 50, max_backoff: 200}, timeout: 10_000, ...over};
}

function profile(data: Buffer, type: string, over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return scrapedProfile({targetId: 't1', type, labels: {instance: '10.0.0.7:6060', region: 'eu-west-1', Zone: 'b'}, time: Date.UTC(2026, 10, 25, 9, 30, 0, 5), data, ...over});
}

void test('profiles land in s3rver under the key layout with their labels, byte-identical', {timeout: 60_000}, async () => {
  const {dir, cleanup} = await tempDir('pprof-s3-');
  const s3 = await startS3rver(join(dir, 's3'));
  const repo = await createS3Repository('s3', s3Config(s3.url));
  const client = new S3Client({region: 'us-east-1', endpoint: s3.url, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'});
  try {
    for (const type of ['heap', 'cpu', 'goroutine']) {
      const p = profile(fixture(`${type}.pb.gz`), type);
      assert.deepEqual(await repo.send(p, AbortSignal.timeout(10_000)), {status: 'ok'});
      const key = s3Key('pprof/', p);
      assert.match(key, new RegExp(`^pprof/billing/${type}/2026/11/25/20261125T093000\\.005Z_10\\.0\\.0\\.7_6060_[0-9a-f]{12}\\.pb\\.gz$`));
      const got = await client.send(new GetObjectCommand({Bucket: BUCKET, Key: key}));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      assert.ok(body.equals(p.data), `${type}: the object is the scraped profile byte for byte`);
      assert.ok(decodePprof(body).sample.length > 0);
      const head = await client.send(new HeadObjectCommand({Bucket: BUCKET, Key: key}));
      assert.equal(head.Metadata?.['pprof-service'], 'billing');
      assert.equal(head.Metadata?.['pprof-type'], type);
      assert.equal(head.Metadata?.['pprof-time'], '2026-11-25T09:30:00.005Z');
      assert.equal(head.Metadata?.['instance'], '10.0.0.7:6060');
      assert.equal(head.Metadata?.['region'], 'eu-west-1');
      assert.equal(head.Metadata?.['zone'], 'b');
    }
    // labels too large for metadata: a sidecar next to the profile
    const big = profile(fixture('heap.pb.gz'), 'heap', {time: Date.UTC(2026, 10, 25, 9, 31), labels: {instance: 'i', tags: 'x'.repeat(2500)}});
    assert.deepEqual(await repo.send(big, AbortSignal.timeout(10_000)), {status: 'ok'});
    const sidecar = s3Key('pprof/', big).replace(/\.pb\.gz$/, '.labels.json');
    const side = JSON.parse(Buffer.from(await (await client.send(new GetObjectCommand({Bucket: BUCKET, Key: sidecar}))).Body!.transformToByteArray()).toString()) as {labels: Record<string, string>};
    assert.equal(side.labels['tags'], 'x'.repeat(2500));
    const head = await client.send(new HeadObjectCommand({Bucket: BUCKET, Key: s3Key('pprof/', big)}));
    assert.equal(head.Metadata?.['pprof-labels'], sidecar);
  } finally {
    client.destroy();
    await repo.close();
    await s3.close();
    await cleanup();
  }
});

void test('a 503 SlowDown is retried by the queue until the object lands', {timeout: 60_000}, async () => {
  const {dir, cleanup} = await tempDir('pprof-s3-');
  const s3 = await startS3rver(join(dir, 's3'));
  const slowDown = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>';
  const proxy = await startProxy(s3.url, (n) => (n < 3 ? {status: 503, body: slowDown} : undefined));
  const repo = await createS3Repository('s3', s3Config(proxy.url));
  const {logger, records: lines} = captureLogger();
  const metrics = createMetrics({defaultMetrics: false});
  const spool = await openSpool(join(dir, 'state'), {logger, metrics});
  spool.activate(new Map([['s3', await spool.attach(repo, settings({policy: {initialMs: 50, maxMs: 200}}))]]));
  const client = new S3Client({region: 'us-east-1', endpoint: s3.url, forcePathStyle: true});
  try {
    const p = profile(fixture('mutex.pb.gz'), 'mutex');
    await spool.submit(p);
    await waitUntil('the profile to leave the queue', () => spool.queue('s3')!.stats().length === 0, {timeoutMs: 20_000});
    assert.equal(proxy.puts(), 4, 'three refusals, then the PUT that landed');
    assert.equal(await metricSum(metrics.sendRetries, {repository: 's3'}), 3);
    assert.equal(await metricSum(metrics.profilesSent, {repository: 's3', result: 'ok'}), 1);
    const warn = lines.find((l) => l['repository'] === 's3' && String(l['msg']).startsWith('repository did not take a profile'));
    assert.match(String(warn?.['error']), /HTTP 503 SlowDown/);
    const got = await client.send(new GetObjectCommand({Bucket: BUCKET, Key: s3Key('pprof/', p)}));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(p.data));
  } finally {
    client.destroy();
    await spool.close(100);
    await repo.close();
    await proxy.close();
    await s3.close();
    await cleanup();
  }
});
