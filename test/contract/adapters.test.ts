/**
 * The contract every repository adapter keeps, run on each kind as the
 * OpenTelemetry Collector's exportertest checks every exporter: 2xx is ok;
 * 400 is permanent, with the peer's answer; 408, 429 and 5xx are retryable,
 * after the Retry-After they give; a refused connection is retryable; an
 * aborted send settles at once; close is idempotent.
 *
 * Each adapter is built from a `repositories:` entry through its descriptor
 * (createRepository, as the daemon builds it) and sends to a loopback server
 * that answers each case in that repository's own dialect: profefe's JSON
 * errors, Pyroscope's Connect errors, S3's XML errors. A status a
 * repository never answers itself (408: a proxy's) comes as a proxy's page.
 *
 * Over 300 lines, kept whole: the dialects, the adapter table and the cases
 * are read together (a new kind adds a row and a dialect here), and the
 * loopback peer exists only to answer these cases, unlike the wire-level
 * fakes in test/helpers.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics.js';
import { createRepository } from '../../src/repositories/factory.js';
import type { RepositoryKind } from '../../src/repositories/registry.js';
import type { Repository, SendResult } from '../../src/repositories/repository.js';
import { captureLogger } from '../helpers/log.js';
import { scrapedProfile, stampedFixture } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

// the SDK's credential chain: static keys, nothing read from this machine's AWS setup
process.env['AWS_ACCESS_KEY_ID'] = 'contract';
process.env['AWS_SECRET_ACCESS_KEY'] = 'contract';
process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
delete process.env['AWS_PROFILE'];
delete process.env['AWS_SESSION_TOKEN'];

/** What the peer answers: a status and the repository's body for it. */
interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** The text each error answer carries, which a permanent result must pass on. */
const PEER_SAYS = 'contract-answer';

/** A proxy's page, for a status the repository itself never answers. */
const proxyPage = (status: number): Answer => ({ status, body: `<html><body><h1>${status}</h1>${PEER_SAYS}</body></html>`, headers: { 'content-type': 'text/html' } });

/** profefe (pkg/server): `{"code": N, "body": …}` or `{"code": N, "error": "…"}`. */
function profefeAnswer(status: number): Answer {
  if (status === 408) return proxyPage(status);
  const json = status < 300 ? { code: status, body: { id: 'bvc6a0o0qmbkp3ag8b10', type: 'heap', service: 'billing' } } : { code: status, error: PEER_SAYS };
  return { status, body: JSON.stringify(json), headers: { 'content-type': 'application/json' } };
}

/** Pyroscope (Connect unary): an empty PushResponse, or a JSON `{code, message}` named by Connect's table of statuses. */
const CONNECT_CODES: Readonly<Record<number, string>> = { 400: 'invalid_argument', 429: 'resource_exhausted', 500: 'internal', 503: 'unavailable' };
function pyroscopeAnswer(status: number): Answer {
  if (status < 300) return { status, body: '', headers: { 'content-type': 'application/proto' } };
  const code = CONNECT_CODES[status];
  if (code === undefined) return proxyPage(status);
  return { status, body: JSON.stringify({ code, message: PEER_SAYS }), headers: { 'content-type': 'application/json' } };
}

/** S3: an ETag, or an XML `<Error>` with S3's code for the status (429: as S3-compatible stores answer; S3 throttles with 503 SlowDown). */
const S3_CODES: Readonly<Record<number, string>> = { 400: 'InvalidArgument', 429: 'TooManyRequests', 500: 'InternalError', 503: 'SlowDown' };
function s3Answer(status: number): Answer {
  if (status < 300) return { status, body: '', headers: { etag: '"0f343b0931126a20f133d67c2b018a3b"' } };
  const code = S3_CODES[status];
  if (code === undefined) return proxyPage(status);
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${PEER_SAYS}</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>contract</HostId></Error>`;
  return { status, body: xml, headers: { 'content-type': 'application/xml', 'x-amz-request-id': '4442587FB7D0A2F9' } };
}

/**
 * OTLP/HTTP (opentelemetry-proto v1.11.0 docs/specification.md): success is
 * an ExportProfilesServiceResponse (empty here), a failure a protobuf
 * google.rpc.Status whose message field (2) carries the text; encoded by
 * hand, it stays a string of ASCII bytes.
 */
function otlpAnswer(status: number): Answer {
  if (status < 300) return { status, body: '', headers: { 'content-type': 'application/x-protobuf' } };
  if (status === 408) return proxyPage(status);
  const code = status === 400 ? 3 : status === 429 ? 8 : status === 503 ? 14 : 13;
  return { status, body: `\x08${String.fromCharCode(code)}\x12${String.fromCharCode(PEER_SAYS.length)}${PEER_SAYS}`, headers: { 'content-type': 'application/x-protobuf' } };
}

/** What one kind needs to run the contract. */
interface Adapter {
  /** The block of its `repositories:` entry, given where its peer listens (an HTTP URL, or a folder). */
  readonly entry: (peer: string) => string;
  /** Its peer's answer to each status; undefined: it has no HTTP peer. */
  readonly answer?: (status: number) => Answer;
  /** Where the protocol itself says otherwise than the shared rule: OTLP retries only 429, 502, 503 and 504. */
  readonly expect?: Readonly<Partial<Record<number, 'permanent' | 'retryable'>>>;
  /** A gRPC-only kind: the same cases run against its gRPC peer in the file named. */
  readonly grpc?: string;
}

// Record<RepositoryKind, …>: a kind without its row here is a type error.
const ADAPTERS: Readonly<Record<RepositoryKind, Adapter>> = {
  profefe: { entry: (url) => `profefe: {url: "${url}"}`, answer: profefeAnswer },
  pyroscope: { entry: (url) => `pyroscope: {url: "${url}"}`, answer: pyroscopeAnswer },
  s3: {
    entry: (url) => `s3: {bucket: profiles, prefix: pprof/, region: us-east-1, endpoint: "${url}", force_path_style: true}`,
    answer: s3Answer,
  },
  directory: { entry: (dir) => `directory: {path: "${dir}"}` },
  // OTLP/HTTP "Retryable Response Codes": 429, 502, 503, 504; "All other 4xx or 5xx response status codes MUST NOT be retried"
  otlp: { entry: (url) => `otlp: {endpoint: "${url}", protocol: http/protobuf, cumulative: as_scraped}`, answer: otlpAnswer, expect: { 408: 'permanent', 500: 'permanent' } },
  parca: { entry: (url) => `parca: {url: "${url}"}`, grpc: 'test/contract/grpc-repositories.test.ts' },
};

/** A request the peer got, whole. */
interface Received {
  readonly method: string;
  readonly url: string;
  readonly bytes: number;
}

/** A loopback server answering whatever `answer` holds; `hold` keeps each request waiting and notes when its client goes away. */
class Peer {
  readonly received: Received[] = [];
  answer: Answer | 'hold' = { status: 200, body: '', headers: {} };
  held = 0;
  abandoned = 0;
  readonly #holding = new Set<ServerResponse>();
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => void this.#serve(req, res));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Buffer).length;
    this.received.push({ method: req.method ?? '', url: req.url ?? '', bytes });
    const answer = this.answer;
    if (answer === 'hold') {
      this.held++;
      this.#holding.add(res);
      res.on('close', () => {
        this.#holding.delete(res);
        this.abandoned++;
      });
      return;
    }
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
    res.end(answer.body);
  }

  /** Drops the requests still held, so that an adapter that ignored its abort can close. */
  release(): void {
    for (const res of this.#holding) res.destroy();
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** An address where nothing listens: a port just given back. */
async function refusingUrl(): Promise<string> {
  const peer = new Peer();
  const url = await peer.listen();
  await peer.close();
  return url;
}

const metrics = createMetrics();

/** The adapter of one `repositories:` entry, built as the daemon builds it. */
async function build(block: string): Promise<Repository> {
  const { config } = parseConfig(`repositories:\n  - ${block}\n`, 'contract.yaml', { baseDir: '.', env: {} });
  const entry = config.repositories[0];
  assert.ok(entry, 'one repositories: entry');
  return createRepository(entry, { logger: captureLogger().logger, metrics, profileLimits: () => config.scrape });
}

/** A heap profile taken now, so that no repository refuses it for its time (Pyroscope's ingestion window). */
function freshProfile() {
  const now = Date.now();
  return scrapedProfile({ time: now, data: stampedFixture('heap', now), sampleCount: 20 });
}

/** Every file under `dir`, with its bytes. */
async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(join(entry.parentPath, entry.name), await readFile(join(entry.parentPath, entry.name)));
  }
  return files;
}

/** A send whose settling a test can wait on, without a sleep. */
function sending(repository: Repository, signal: AbortSignal): { readonly settled: () => SendResult | undefined; readonly failed: () => unknown } {
  let result: SendResult | undefined;
  let error: unknown;
  void repository.send(freshProfile(), signal).then(
    (r) => (result = r),
    (e: unknown) => (error = e ?? new Error('rejected')),
  );
  return { settled: () => result, failed: () => error };
}

/** The answers whose classification the contract fixes. */
const STATUS_CASES: readonly { readonly name: string; readonly status: number; readonly retryAfter?: string; readonly expect: 'ok' | 'permanent' | 'retryable' }[] = [
  { name: '2xx is ok', status: 200, expect: 'ok' },
  { name: '400 is permanent, with the answer', status: 400, expect: 'permanent' },
  { name: '408 with Retry-After is retryable after it', status: 408, retryAfter: '7', expect: 'retryable' },
  { name: '429 with Retry-After is retryable after it', status: 429, retryAfter: '7', expect: 'retryable' },
  { name: '500 with Retry-After is retryable after it', status: 500, retryAfter: '7', expect: 'retryable' },
  { name: '503 with Retry-After is retryable after it', status: 503, retryAfter: '7', expect: 'retryable' },
];

for (const [kind, adapter] of Object.entries(ADAPTERS) as [RepositoryKind, Adapter][]) {
  const { answer } = adapter;

  if (adapter.grpc !== undefined) {
    describe(`the ${kind} adapter keeps the repository contract over gRPC`, () => {
      // ok, permanent, retryable with RetryInfo, refused, abort and close run there, against a gRPC peer
      test(`has its row in ${adapter.grpc}`, async () => {
        const table = await readFile(new URL(`../../${adapter.grpc}`, import.meta.url), 'utf8');
        assert.match(table, new RegExp(`name: '${kind}', protocol: 'grpc'`));
      });
    });
    continue;
  }

  if (answer === undefined) {
    // no HTTP peer: the status, Retry-After and refused-connection cases do not apply
    describe(`the ${kind} adapter keeps the repository contract (no HTTP: ok, abort, close)`, () => {
      let dir: string;
      before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-contract-'));
      });
      after(async () => {
        await rm(dir, { recursive: true, force: true });
      });

      test('a stored profile is ok, its bytes as scraped', async () => {
        const folder = await mkdtemp(join(dir, 'ok-'));
        const repository = await build(adapter.entry(folder));
        const profile = freshProfile();
        assert.deepEqual(await repository.send(profile, AbortSignal.timeout(5000)), { status: 'ok' });
        const stored = [...(await filesUnder(folder)).values()];
        assert.ok(stored.some((bytes) => bytes.equals(profile.data)), 'the profile is stored as it came');
        await repository.close();
      });

      test('a folder that cannot be written is retryable', async () => {
        const notADir = join(dir, 'a-file');
        await writeFile(notADir, '');
        const repository = await build(adapter.entry(join(notADir, 'profiles')));
        const result = await repository.send(freshProfile(), AbortSignal.timeout(5000));
        assert.equal(result.status, 'retryable', JSON.stringify(result));
        await repository.close();
      });

      test('an aborted send settles, and says ok only for a stored profile', async () => {
        // a local write of milliseconds: the adapter does not read the signal, so abort before the send
        const folder = await mkdtemp(join(dir, 'abort-'));
        const repository = await build(adapter.entry(folder));
        const controller = new AbortController();
        controller.abort();
        const send = sending(repository, controller.signal);
        const result = await waitUntil('the aborted send to settle', () => send.settled() ?? (send.failed() !== undefined && 'rejected'), { timeoutMs: 2000 });
        assert.notEqual(result, 'rejected', `send rejected: ${String(send.failed())}`);
        const sent = result as SendResult;
        if (sent.status === 'ok') assert.ok((await filesUnder(folder)).size > 0, 'ok, yet nothing stored');
        else assert.equal(sent.status, 'retryable', JSON.stringify(sent));
        await repository.close();
      });

      test('close is idempotent', async () => {
        const folder = await mkdtemp(join(dir, 'close-'));
        const repository = await build(`directory: {path: "${folder}", retention: {max_age: 1h}}`);
        assert.equal((await repository.send(freshProfile(), AbortSignal.timeout(5000))).status, 'ok');
        await Promise.all([repository.close(), repository.close()]);
        await repository.close();
      });
    });
    continue;
  }

  describe(`the ${kind} adapter keeps the repository contract`, () => {
    let peer: Peer;
    let url: string;
    before(async () => {
      peer = new Peer();
      url = await peer.listen();
    });
    after(async () => {
      await peer.close();
    });

    for (const base of STATUS_CASES) {
      const own = adapter.expect?.[base.status];
      const c = own === undefined ? base : { ...base, name: `${base.status} is ${own} (the protocol's own rule)`, expect: own };
      test(c.name, async () => {
        const base = answer(c.status);
        peer.answer = { ...base, headers: { ...base.headers, ...(c.retryAfter !== undefined ? { 'retry-after': c.retryAfter } : {}) } };
        const before = peer.received.length;
        const repository = await build(adapter.entry(url));
        try {
          const result = await repository.send(freshProfile(), AbortSignal.timeout(5000));
          assert.equal(peer.received.length - before, 1, 'one request reached the peer');
          assert.ok((peer.received.at(-1)?.bytes ?? 0) > 0, 'with the profile in its body');
          if (c.expect === 'ok') {
            assert.deepEqual(result, { status: 'ok' });
          } else if (c.expect === 'permanent') {
            assert.equal(result.status, 'permanent', JSON.stringify(result));
            const error = (result as { error: string }).error;
            assert.match(error, new RegExp(`\\b${c.status}\\b`), 'the error names the status');
            assert.ok(error.includes(PEER_SAYS), `the error passes on the answer: ${error}`);
          } else {
            assert.equal(result.status, 'retryable', JSON.stringify(result));
            assert.match((result as { error: string }).error, new RegExp(`\\b${c.status}\\b`), 'the error names the status');
            const retryAfterMs = (result as { retryAfterMs?: number }).retryAfterMs;
            assert.equal(retryAfterMs, Number(c.retryAfter) * 1000, 'Retry-After is passed on');
          }
        } finally {
          await repository.close();
        }
      });
    }

    test('a refused connection is retryable', async () => {
      const repository = await build(adapter.entry(await refusingUrl()));
      try {
        const result = await repository.send(freshProfile(), AbortSignal.timeout(5000));
        assert.equal(result.status, 'retryable', JSON.stringify(result));
        assert.match((result as { error: string }).error, /ECONNREFUSED/);
      } finally {
        await repository.close();
      }
    });

    test('an abort while the peer holds the request settles the send at once, retryable, and drops the request', async () => {
      peer.answer = 'hold';
      const { held, abandoned } = peer;
      const repository = await build(adapter.entry(url));
      try {
        const controller = new AbortController();
        const send = sending(repository, controller.signal);
        await waitUntil('the request to reach the peer', () => peer.held > held);
        controller.abort();
        const result = await waitUntil('the aborted send to settle', () => send.settled() ?? (send.failed() !== undefined && 'rejected'), { timeoutMs: 2000 });
        assert.notEqual(result, 'rejected', `send rejected: ${String(send.failed())}`);
        assert.equal(typeof result === 'object' && result.status, 'retryable', JSON.stringify(result));
        await waitUntil('the peer to see the request dropped', () => peer.abandoned > abandoned, { timeoutMs: 2000 });
      } finally {
        peer.release();
        await repository.close();
      }
    });

    test('close is idempotent, after sends and before any', async () => {
      peer.answer = answer(200);
      const used = await build(adapter.entry(url));
      assert.equal((await used.send(freshProfile(), AbortSignal.timeout(5000))).status, 'ok');
      await Promise.all([used.close(), used.close()]);
      await used.close();
      const unused = await build(adapter.entry(url));
      await unused.close();
      await unused.close();
    });
  });
}
