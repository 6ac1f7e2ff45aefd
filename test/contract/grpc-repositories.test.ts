/**
 * The repository contract for the OTLP and Parca adapters, against the
 * loopback fakes of test/helpers/grpc-fake.ts (which check what the real
 * receivers check): ok; a refusal the protocol calls permanent is
 * permanent, with the peer's message; throttling is retryable after the
 * hint the peer gave (Retry-After, RetryInfo); a partial success is never
 * retried; a refused connection and an abort are retryable; TLS with the
 * block's CA; close is idempotent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics.js';
import { createRepository } from '../../src/repositories/factory.js';
import type { Repository, SendResult } from '../../src/repositories/repository.js';
import { makeTestCerts, SKIP_WITHOUT_OPENSSL } from '../helpers/certs.js';
import { GRPC, ProfilesFake } from '../helpers/grpc-fake.js';
import { captureLogger } from '../helpers/log.js';
import { scrapedProfile, stampedFixture } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

const metrics = createMetrics();

async function build(block: string): Promise<Repository> {
  const { config } = parseConfig(`repositories:\n  - ${block}\n`, 'contract.yaml', { baseDir: '.', env: {} });
  return createRepository(config.repositories[0]!, { logger: captureLogger().logger, metrics, profileLimits: () => config.scrape });
}

function freshProfile() {
  const now = Date.now();
  return scrapedProfile({ time: now, data: stampedFixture('heap', now), sampleCount: 20 });
}

/** The three ways profiles leave for these fakes. */
const KINDS = [
  { name: 'otlp http/protobuf', protocol: 'http', entry: (url: string, extra = '') => `otlp: {endpoint: "${url}", protocol: http/protobuf, cumulative: as_scraped${extra}}` },
  { name: 'otlp grpc', protocol: 'grpc', entry: (url: string, extra = '') => `otlp: {endpoint: "${url}", protocol: grpc, cumulative: as_scraped${extra}}` },
  { name: 'parca', protocol: 'grpc', entry: (url: string, extra = '') => `parca: {url: "${url}"${extra}}` },
] as const;

for (const kind of KINDS) {
  describe(`the ${kind.name} adapter keeps the repository contract`, () => {
    let fake: ProfilesFake;
    let url: string;
    before(async () => {
      fake = new ProfilesFake(kind.protocol);
      url = `http://127.0.0.1:${await fake.listen()}`;
    });
    after(() => fake.close());

    const send = async (entry = kind.entry(url)): Promise<SendResult> => {
      const repository = await build(entry);
      try {
        return await repository.send(freshProfile(), AbortSignal.timeout(5000));
      } finally {
        await repository.close();
      }
    };

    test('an accepted profile is ok, and the peer took it past its checks', async () => {
      const before = fake.received.length;
      assert.deepEqual(await send(), { status: 'ok' });
      assert.equal(fake.received.length, before + 1);
      assert.deepEqual(fake.refused, []);
    });

    test('the block\'s headers and credentials reach the peer: bearer_token_file, basic_auth', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-grpc-auth-'));
      try {
        await writeFile(join(dir, 'token'), 'tok-123\n');
        for (const [extra, authorization] of [
          [`, headers: {x-team: core}, bearer_token_file: "${join(dir, 'token')}"`, 'Bearer tok-123'],
          [', headers: {x-team: core}, basic_auth: {username: u, password: p}', `Basic ${Buffer.from('u:p').toString('base64')}`],
        ] as const) {
          const before = fake.received.length;
          assert.deepEqual(await send(kind.entry(url, extra)), { status: 'ok' });
          const got = fake.received[before]!.headers;
          assert.equal(got['authorization'], authorization);
          assert.equal(got['x-team'], 'core');
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('a refusal of the request itself (HTTP 400, INVALID_ARGUMENT) is permanent, with the peer\'s message', async () => {
      fake.failures.push({ http: 400, grpc: GRPC.INVALID_ARGUMENT, message: 'contract-refusal' });
      const result = await send();
      assert.equal(result.status, 'permanent', JSON.stringify(result));
      assert.match((result as { error: string }).error, /contract-refusal/);
      assert.match((result as { error: string }).error, kind.protocol === 'http' ? /\b400\b/ : /InvalidArgument/);
    });

    test('throttling (HTTP 429/503, UNAVAILABLE) is retryable after the peer\'s hint', async () => {
      for (const http of kind.protocol === 'http' ? [429, 503] : [503]) {
        fake.failures.push({ http, grpc: GRPC.UNAVAILABLE, message: 'contract-busy', retryAfterS: 7 });
        const result = await send();
        assert.equal(result.status, 'retryable', JSON.stringify(result));
        assert.equal((result as { retryAfterMs?: number }).retryAfterMs, 7000, 'Retry-After / RetryInfo is passed on');
      }
    });

    if (kind.name === 'otlp grpc') {
      test('RESOURCE_EXHAUSTED is retryable only with a RetryInfo (the OTLP spec)', async () => {
        fake.failures.push({ grpc: GRPC.RESOURCE_EXHAUSTED, message: 'contract-full' });
        assert.equal((await send()).status, 'permanent');
        fake.failures.push({ grpc: GRPC.RESOURCE_EXHAUSTED, message: 'contract-full', retryAfterS: 3 });
        const result = await send();
        assert.equal(result.status, 'retryable', JSON.stringify(result));
        assert.equal((result as { retryAfterMs?: number }).retryAfterMs, 3000);
      });
    }

    if (kind.name.startsWith('otlp')) {
      test('a partial success is not retried: rejected profiles make it permanent, a warning alone is ok', async () => {
        fake.partial = { rejected: 1, message: 'contract-partial' };
        const rejected = await send();
        assert.equal(rejected.status, 'permanent', JSON.stringify(rejected));
        assert.match((rejected as { error: string }).error, /rejected 1 of \d+ profiles: contract-partial/);
        fake.partial = { rejected: 0, message: 'contract-warning' };
        assert.deepEqual(await send(), { status: 'ok' });
      });

      if (kind.protocol === 'http') {
        test('500 is permanent: OTLP/HTTP retries only 429, 502, 503 and 504', async () => {
          fake.failures.push({ http: 500, message: 'contract-internal' });
          assert.equal((await send()).status, 'permanent');
          fake.failures.push({ http: 502, message: 'contract-gateway' });
          assert.equal((await send()).status, 'retryable');
        });

        test('an answer past 4 MiB is permanent, and read no further (the OTLP spec)', async () => {
          // a receiver that keeps talking: 64 KiB chunks for as long as anyone reads
          let written = 0;
          const chatty = createServer((_req, res) => {
            res.writeHead(200, { 'content-type': 'application/x-protobuf' });
            const chunk = Buffer.alloc(64 * 1024);
            const more = (): void => {
              while (written < 64 * 1024 ** 2 && res.write(chunk)) written += chunk.length;
              if (written >= 64 * 1024 ** 2) res.end();
            };
            res.on('drain', more);
            more();
          });
          await new Promise<void>((resolve) => chatty.listen(0, '127.0.0.1', resolve));
          try {
            const result = await send(kind.entry(`http://127.0.0.1:${(chatty.address() as AddressInfo).port}`));
            assert.equal(result.status, 'permanent', JSON.stringify(result));
            assert.match((result as { error: string }).error, /HTTP 200: the answer is larger than 4MiB/);
            assert.ok(written < 64 * 1024 ** 2, `stopped reading: the receiver wrote ${written} bytes`);
          } finally {
            chatty.closeAllConnections();
            await new Promise((resolve) => chatty.close(resolve));
          }
        });
      }
    }

    test('a refused connection is retryable', async () => {
      const gone = new ProfilesFake(kind.protocol);
      const port = await gone.listen();
      await gone.close();
      const result = await send(kind.entry(`http://127.0.0.1:${port}`));
      assert.equal(result.status, 'retryable', JSON.stringify(result));
      assert.match((result as { error: string }).error, /ECONNREFUSED/);
    });

    test('an abort while the peer holds the request settles the send at once, retryable, and drops the request', async () => {
      fake.hold = true;
      const { held, abandoned } = fake;
      const repository = await build(kind.entry(url));
      try {
        const controller = new AbortController();
        let result: SendResult | undefined;
        void repository.send(freshProfile(), controller.signal).then((r) => (result = r));
        await waitUntil('the request to reach the peer', () => fake.held > held);
        controller.abort();
        const settled = await waitUntil('the aborted send to settle', () => result, { timeoutMs: 2000 });
        assert.equal(settled.status, 'retryable', JSON.stringify(settled));
        await repository.close();
        await waitUntil('the peer to see the request dropped', () => fake.abandoned > abandoned, { timeoutMs: 2000 });
      } finally {
        fake.hold = false;
        await repository.close();
      }
    });

    test('close is idempotent, after sends and before any', async () => {
      const used = await build(kind.entry(url));
      assert.equal((await used.send(freshProfile(), AbortSignal.timeout(5000))).status, 'ok');
      await Promise.all([used.close(), used.close()]);
      await used.close();
      const unused = await build(kind.entry(url));
      await unused.close();
      await unused.close();
    });
  });
}

describe('TLS: https:// with the block\'s CA', { skip: SKIP_WITHOUT_OPENSSL }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-grpc-tls-'));
    makeTestCerts(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const kind of KINDS) {
    test(`${kind.name}: the block's CA is trusted, and without it the send is retryable (the certificate is not)`, async () => {
      const fake = new ProfilesFake(kind.protocol, { key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.pem')) });
      const url = `https://127.0.0.1:${await fake.listen()}`;
      try {
        const trusted = await build(kind.entry(url, `, tls: {ca_file: "${join(dir, 'ca.pem')}"}`));
        assert.deepEqual(await trusted.send(freshProfile(), AbortSignal.timeout(5000)), { status: 'ok' });
        await trusted.close();
        assert.equal(fake.received.length, 1);
        const untrusted = await build(kind.entry(url));
        const result = await untrusted.send(freshProfile(), AbortSignal.timeout(5000));
        await untrusted.close();
        assert.equal(result.status, 'retryable', JSON.stringify(result));
        assert.match((result as { error: string }).error, /certificate|SELF_SIGNED|UNABLE_TO_VERIFY/i);
        assert.equal(fake.received.length, 1);
      } finally {
        await fake.close();
      }
    });
  }
});
