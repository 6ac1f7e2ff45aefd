/**
 * The http provider against a loopback server answering as Prometheus's
 * discovery/http tests have it (http_test.go, Apache-2.0, Copyright The
 * Prometheus Authors: a valid refresh, a 400, a text/plain answer, the
 * content-type table) plus what must not be lost: a failure keeps the last
 * good list and is counted; a redirect, a non-JSON answer or an answer too
 * big is an error that says so.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ProviderRunner } from '../../src/discovery/index.js';
import { DiscoveryError } from '../../src/discovery/provider.js';
import { createHttpProvider } from '../../src/discovery/providers/http.js';
import { createMetrics } from '../../src/metrics.js';
import type { Discovered } from '../../src/targets/index.js';
import { captureLogger } from '../helpers/log.js';
import { metricSum } from '../helpers/metrics.js';
import { config } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

type Answer = (res: ServerResponse) => void;
let answer: Answer = (res) => res.end();
const requests: IncomingHttpHeaders[] = [];
const server = createServer((req, res) => {
  requests.push(req.headers);
  answer(res);
});
let base = '';

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function json(body: string, type = 'application/json'): Answer {
  return (res) => {
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  };
}

async function provider(extra = '') {
  const c = config(`discovery:\n  - http: {url: "${base}/sd", refresh: 1h${extra}}`);
  const block = c.discovery[0]?.http;
  assert.ok(block);
  return createHttpProvider(block, 0, { logger: captureLogger().logger });
}

const addresses = (found: readonly Discovered[] | undefined): string[] => (found ?? []).map((d) => d.address ?? '?');

async function refreshError(extra = ''): Promise<DiscoveryError> {
  const p = await provider(extra);
  try {
    await p.refresh(AbortSignal.timeout(5000));
  } catch (err) {
    assert.ok(err instanceof DiscoveryError, String(err));
    return err;
  } finally {
    await p.close?.();
  }
  assert.fail('the refresh succeeded');
}

describe('http_sd answers', () => {
  test('a valid refresh (TestHTTPValidRefresh): targets, labels, __meta_url; headers and credentials for the endpoint only', async () => {
    answer = json('[{"labels": {"k": "1", "pprof.port": "7070"}, "targets": ["127.0.0.1"]}]');
    requests.length = 0;
    const p = await provider(', headers: {X-Api-Key: sekrit}, endpoint: {bearer_token: ep-token}, bearer_token: target-token');
    const found = await p.refresh(AbortSignal.timeout(5000));
    await p.close?.();
    assert.deepEqual(addresses(found), ['127.0.0.1']);
    assert.deepEqual(found[0]?.directives, { 'pprof.label.k': '1', 'pprof.port': '7070' });
    assert.equal(found[0]?.meta?.['__meta_url'], `${base}/sd`);
    assert.equal(requests[0]?.['x-api-key'], 'sekrit');
    assert.equal(requests[0]?.['authorization'], 'Bearer ep-token', 'the endpoint gets its own credentials, never the targets\'');
    assert.equal(requests[0]?.['accept'], 'application/json');
    assert.equal(requests[0]?.['x-prometheus-refresh-interval-seconds'], '3600');
  });

  test('an empty list is an answer with no targets', async () => {
    answer = json('[]');
    const p = await provider();
    assert.deepEqual(await p.refresh(AbortSignal.timeout(5000)), []);
    await p.close?.();
  });

  test('HTTP 400 (TestHTTPInvalidCode)', async () => {
    answer = (res) => {
      res.writeHead(400);
      res.end();
    };
    assert.match((await refreshError()).message, /^discovery\[0\]\.http: http:\/\/127\.0\.0\.1:\d+\/sd answered HTTP 400: an http_sd endpoint answers 200$/);
  });

  test('text/plain (TestHTTPInvalidFormat)', async () => {
    answer = json('{}\n', 'text/plain; charset=utf-8');
    assert.match((await refreshError()).message, /content type "text\/plain; charset=utf-8": an http_sd endpoint answers application\/json/);
  });

  test('content types (TestContentTypeRegex)', async () => {
    const table: [string, boolean][] = [
      ['application/json;charset=utf-8', true],
      ['application/json;charset=UTF-8', true],
      ['Application/JSON;Charset="utf-8"', true],
      ['application/json; charset="utf-8"', true],
      ['application/json', true],
      ['application/jsonl; charset="utf-8"', false],
      ['application/json;charset=UTF-9', false],
      ['application /json;charset=UTF-8', false],
      ['application/ json;charset=UTF-8', false],
      ['application/json;', false],
      ['charset=UTF-8', false],
    ];
    for (const [type, ok] of table) {
      answer = json('[]', type);
      const p = await provider();
      let result = true;
      try {
        await p.refresh(AbortSignal.timeout(5000));
      } catch (err) {
        if (!(err instanceof DiscoveryError && /content type/.test(err.message))) throw err;
        result = false;
      }
      await p.close?.();
      assert.equal(result, ok, type);
    }
  });

  test('a non-JSON answer, a JSON object, a null group: errors that say what came', async () => {
    answer = json('<html>login</html>');
    assert.match((await refreshError()).message, /gave an answer that is not a target group list: .*not valid JSON/);
    answer = json('{"targets": []}');
    assert.match((await refreshError()).message, /expected a list of target groups/);
    answer = json('[null]');
    assert.match((await refreshError()).message, /groups\[0\]: expected a target group/);
  });

  test('a redirect is not followed', async () => {
    answer = (res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    };
    assert.match((await refreshError()).message, /answered HTTP 302, a redirect to http:\/\/169\.254\.169\.254\/latest\/meta-data\/: redirects are not followed; set url to the final address/);
  });

  test('an answer over max_answer_size, with or without a Content-Length', async () => {
    const big = JSON.stringify([{ targets: ['a:1'], labels: { x: 'y'.repeat(2 * 1024 * 1024) } }]);
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) });
      res.end(big);
    };
    assert.match((await refreshError(', max_answer_size: 1MiB')).message, /answered 2 MiB, over max_answer_size \(1 MiB\)/);
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(big.slice(0, 1024));
      res.end(big.slice(1024));
    };
    // chunked: no length known ahead
    assert.match((await refreshError(', max_answer_size: 1MiB')).message, /answered more than max_answer_size \(1 MiB\)/);
  });

  test('100,000 targets are refused whole', async () => {
    answer = json(JSON.stringify([{ targets: Array.from({ length: 100_000 }, (_, i) => `h${i}:1`) }]));
    assert.match((await refreshError()).message, /more than 25000 targets/);
  });
});

test('a failure keeps the last good list and is counted', async () => {
  answer = json('[{"targets": ["10.0.0.1:6060", "10.0.0.2:6060"]}]');
  const c = config(`discovery:\n  - http: {url: "${base}/sd", refresh: 1s}`);
  const block = c.discovery[0]?.http;
  assert.ok(block);
  const metrics = createMetrics({ defaultMetrics: false });
  const runner = new ProviderRunner(await createHttpProvider(block, 0, { logger: captureLogger().logger }), { logger: captureLogger().logger, metrics, onChange: () => undefined });
  try {
    await waitUntil('the first list', () => runner.state.found?.length === 2);
    answer = (res) => {
      res.writeHead(503);
      res.end();
    };
    await waitUntil('a failed refresh', () => runner.state.error?.includes('HTTP 503'));
    assert.deepEqual(addresses(runner.state.found), ['10.0.0.1:6060', '10.0.0.2:6060']);
    assert.ok((await metricSum(metrics.discoveryFailures, { provider: 'http' })) >= 1);
    answer = json('[]');
    await waitUntil('the empty list replacing it', () => runner.state.found?.length === 0 && runner.state.error === undefined);
  } finally {
    await runner.stop();
  }
});
