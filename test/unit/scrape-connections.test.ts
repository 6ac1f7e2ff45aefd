import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createTargetClient } from '../../src/http/index.js';
import type { TargetClient } from '../../src/http/index.js';
import { Scheduler } from '../../src/scrape/scheduler.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import type { ScraperOptions } from '../../src/scrape/scraper.js';
import type { Target } from '../../src/targets/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { waitUntil } from '../helpers/wait.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

// What a target's connections cost between scrapes a minute apart: a scrape
// with nothing else of its target due soon has its connection closed after
// the answer; the target's quick types share one connection; a CPU-style
// scrape takes its own, so it never holds the others up for its window.
describe('scrape connections', () => {
  let server: Server;
  let port = 0;
  let heap: Buffer;
  const sockets = new Set<Socket>();
  let opened = 0;
  /** Requests held until the test lets them answer. */
  const held: (() => void)[] = [];
  /** The Connection header of each request. */
  const connectionHeaders: (string | undefined)[] = [];

  before(async () => {
    heap = await readFile(join(FIXTURES, 'heap.pb.gz'));
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      connectionHeaders.push(req.headers.connection);
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(heap);
      };
      if (req.url?.includes('hold')) held.push(answer);
      else answer();
    });
    server.on('connection', (socket: Socket) => {
      opened++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    server.closeAllConnections();
    opened = 0;
    connectionHeaders.length = 0;
  });

  function targetWith(profiles: { type: string; path: string; seconds?: number }[]): Target {
    return {
      id: 't',
      provider: 'static',
      source: 0,
      service: 's',
      address: `127.0.0.1:${port}`,
      scheme: 'http',
      labels: {},
      timing: { kind: 'interval', ms: 60_000 },
      profiles: profiles.map((p) => ({ type: p.type, url: `http://127.0.0.1:${port}${p.path}`, delta: false, ...(p.seconds !== undefined ? { seconds: p.seconds } : {}) })),
    };
  }

  async function withClient<T>(fn: (client: TargetClient) => Promise<T>): Promise<T> {
    const client = await createTargetClient({});
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  }

  function scrape(client: TargetClient, target: Target, index: number, options: Partial<ScraperOptions> = {}) {
    return scrapeProfile(target, target.profiles[index]!, client, { timeout: 5000, maxProfileSize: 1 << 20, maxDecompressedSize: 4 << 20, ...options }, AbortSignal.timeout(10_000));
  }

  test('nothing else due soon: the connection is closed after the answer', async () => {
    const target = targetWith([{ type: 'heap', path: '/heap' }]);
    await withClient(async (client) => {
      const outcome = await scrape(client, target, 0, { keepConnection: false });
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.reason);
      assert.deepEqual(connectionHeaders, ['close'], 'the request asked for the connection to be closed');
      await waitUntil('the target to see its connection closed', () => sockets.size === 0);
      assert.ok((await scrape(client, target, 0, { keepConnection: false })).ok);
      assert.equal(opened, 2, 'each scrape had a connection of its own');
    });
  });

  test('another scrape due soon: the connection is kept for it', async () => {
    const target = targetWith([{ type: 'heap', path: '/heap' }]);
    await withClient(async (client) => {
      assert.ok((await scrape(client, target, 0)).ok);
      assert.ok((await scrape(client, target, 0, { keepConnection: true })).ok);
      assert.equal(opened, 1, 'the second scrape reused the first one\'s connection');
      assert.deepEqual(connectionHeaders, ['keep-alive', 'keep-alive']);
      assert.equal(sockets.size, 1);
    });
  });

  test('two quick types at once take turns on one connection; a CPU profile takes its own', async () => {
    const target = targetWith([
      { type: 'heap', path: '/heap?hold' },
      { type: 'goroutine', path: '/goroutine' },
      { type: 'cpu', path: '/profile?hold', seconds: 1 },
    ]);
    await withClient(async (client) => {
      const cpu = scrape(client, target, 2);
      const first = scrape(client, target, 0);
      await waitUntil('both held requests to arrive', () => held.length === 2);
      const second = scrape(client, target, 1);
      assert.equal(opened, 2, 'the CPU profile on a connection of its own, the quick types on one');
      for (const answer of held.splice(0)) answer();
      for (const outcome of await Promise.all([cpu, first, second])) assert.ok(outcome.ok, outcome.ok ? '' : outcome.reason);
      assert.equal(opened, 2, 'goroutine waited for heap\'s connection instead of opening another');
    });
  });

  test('a scrape waiting behind one whose connection closes gets a new connection', async () => {
    const target = targetWith([
      { type: 'heap', path: '/heap?hold' },
      { type: 'goroutine', path: '/goroutine' },
    ]);
    await withClient(async (client) => {
      const first = scrape(client, target, 0, { keepConnection: false });
      await waitUntil('the held request to arrive', () => held.length === 1);
      const second = scrape(client, target, 1, { keepConnection: false });
      for (const answer of held.splice(0)) answer();
      for (const outcome of await Promise.all([first, second])) assert.ok(outcome.ok, outcome.ok ? '' : outcome.reason);
      assert.equal(opened, 2);
    });
  });
});

describe('Scheduler.nextTickOfTarget', () => {
  test('the earliest next tick of any of the target\'s types; Infinity for a target it does not run', () => {
    const clock = new FakeClock();
    const s = new Scheduler({ concurrency: 1, clock }, { run: async () => undefined });
    const t: Target = {
      id: 'a',
      provider: 'static',
      source: 0,
      service: 's',
      address: 'a:6060',
      scheme: 'http',
      labels: {},
      timing: { kind: 'interval', ms: 60_000 },
      profiles: ['heap', 'goroutine', 'block'].map((type) => ({ type, url: `http://a:6060/${type}`, delta: false })),
    };
    s.update([t]);
    const ticks = t.profiles.map((p) => s.nextTickOf(`a/${p.type}`)!);
    assert.equal(s.nextTickOfTarget(t), Math.min(...ticks));
    assert.equal(s.nextTickOfTarget({ ...t, id: 'gone' }), Infinity);
    s.stop();
  });
});
