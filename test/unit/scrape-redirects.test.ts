import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTargetClient } from '../../src/http/index.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import type { Target } from '../../src/targets/index.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

describe('same-host redirects', () => {
  let server: Server;
  let port = 0;
  let hits = 0;

  before(async () => {
    const heap = await readFile(join(FIXTURES, 'heap.pb.gz'));
    // /hop/N redirects N more times, then answers with a heap profile
    server = createServer((req, res) => {
      hits++;
      const left = Number(/^\/hop\/(\d+)$/.exec(req.url ?? '')?.[1] ?? 0);
      if (left > 0) res.writeHead(302, { location: `/hop/${left - 1}` }).end();
      else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(heap);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function scrapeThrough(redirects: number) {
    hits = 0;
    const url = `http://127.0.0.1:${port}/hop/${redirects}`;
    const target: Target = { id: 't', provider: 'static', source: 0, service: 's', address: `127.0.0.1:${port}`, scheme: 'http', labels: {}, timing: { kind: 'interval', ms: 60_000 }, profiles: [{ type: 'heap', url, delta: false }] };
    const client = await createTargetClient({});
    try {
      return await scrapeProfile(target, target.profiles[0]!, client, { timeout: 5000, maxProfileSize: 1 << 20, maxDecompressedSize: 4 << 20 }, AbortSignal.timeout(10_000));
    } finally {
      await client.close();
    }
  }

  for (const n of [0, 1, 5]) {
    test(`${n} redirect(s): followed, the profile arrives`, async () => {
      const outcome = await scrapeThrough(n);
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.reason);
      assert.equal(hits, n + 1);
    });
  }

  test('6 redirects: the 6th is refused, saying more than 5', async () => {
    const outcome = await scrapeThrough(6);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.ok ? '' : outcome.result, 'redirect');
    assert.equal(outcome.ok ? '' : outcome.reason, 'more than 5 redirects');
    assert.equal(hits, 6, 'five redirects followed; the sixth answer is not');
  });
});
