/**
 * The read side the quickstart's commands use (docs/quickstart-ec2.md): the
 * Pyroscope fake's querier LabelValues and the profefe fake's services list,
 * each answering from what was pushed, in the shape and with the refusals of
 * the real server.
 */
import assert from 'node:assert/strict';
import {randomUUID} from 'node:crypto';
import {test} from 'node:test';
import {request} from 'undici';
import {encodePushRequest} from '../../src/repositories/pyroscope-push.js';
import {startProfefeFake} from '../helpers/profefe-fake.js';
import {stampedFixture} from '../helpers/profiles.js';
import {LABEL_VALUES_PATH, PUSH_PATH, startPyroscopeFake} from '../helpers/pyroscope-fake.js';

async function call(url: string, body: unknown, contentType = 'application/json'): Promise<{status: number; json: unknown}> {
  const res = await request(url, {method: 'POST', headers: {'content-type': contentType}, body: JSON.stringify(body)});
  return {status: res.statusCode, json: await res.body.json()};
}

void test('Pyroscope LabelValues: the values of pushed series in the window, sorted; the time range and name required', async () => {
  const fake = await startPyroscopeFake();
  try {
    const now = Date.now();
    const push = async (labels: [string, string][], timeMs: number): Promise<void> => {
      const res = await request(`${fake.url}${PUSH_PATH}`, {method: 'POST', headers: {'content-type': 'application/proto'}, body: encodePushRequest(labels, stampedFixture('goroutine', timeMs), randomUUID())});
      assert.equal(res.statusCode, 200, await res.body.text());
    };
    await push([['__name__', 'goroutine'], ['service_name', 'checkout'], ['env', 'prod']], now - 60_000);
    await push([['__name__', 'process_cpu'], ['service_name', 'billing'], ['env', 'prod']], now - 30_000);
    await push([['__name__', 'goroutine'], ['service_name', 'archive'], ['env', 'dev']], now - 40 * 60_000);
    const ask = (body: unknown): Promise<{status: number; json: unknown}> => call(`${fake.url}${LABEL_VALUES_PATH}`, body);

    assert.deepEqual(await ask({name: 'service_name', start: now - 3_600_000, end: now}), {status: 200, json: {names: ['archive', 'billing', 'checkout']}});
    // int64s as protojson strings, a window, matchers (all of them hold)
    assert.deepEqual(await ask({name: 'service_name', start: String(now - 600_000), end: String(now)}), {status: 200, json: {names: ['billing', 'checkout']}});
    assert.deepEqual(await ask({name: '__name__', matchers: ['{service_name="checkout"}'], start: now - 3_600_000, end: now}), {status: 200, json: {names: ['goroutine']}});
    assert.deepEqual(await ask({name: '__name__', matchers: ['{env="prod"}', '{service_name="archive"}'], start: now - 3_600_000, end: now}), {status: 200, json: {}});
    assert.equal(fake.requests(), 3, 'queries are not counted as pushes');

    assert.deepEqual(await ask({name: 'service_name'}), {status: 400, json: {code: 'invalid_argument', message: 'missing time range in the query'}});
    assert.deepEqual(await ask({name: 'service_name', start: now, end: now - 1}), {status: 400, json: {code: 'invalid_argument', message: 'query start time is after end time'}});
    assert.deepEqual(await ask({start: now - 1, end: now}), {status: 400, json: {code: 'invalid_argument', message: 'name is required'}});
    assert.equal((await ask({name: 'x', matchers: ['{a=~"b"}'], start: now - 1, end: now})).status, 400);
    assert.equal((await call(`${fake.url}${LABEL_VALUES_PATH}`, {}, 'application/proto')).status, 404, 'the JSON codec only');
    assert.deepEqual(fake.rejected, [], 'queries are not refused pushes');
  } finally {
    await fake.close();
  }
});

void test('profefe GET /api/0/services: 404 "nothing found" while empty, then the services sorted', async () => {
  const fake = await startProfefeFake();
  try {
    const services = async (): Promise<{status: number; json: unknown}> => {
      const res = await request(`${fake.url}/api/0/services`);
      return {status: res.statusCode, json: await res.body.json()};
    };
    assert.deepEqual(await services(), {status: 404, json: {code: 404, error: 'nothing found'}});
    for (const service of ['checkout', 'billing', 'checkout']) {
      const res = await request(`${fake.url}/api/0/profiles?service=${service}&type=goroutine`, {method: 'POST', body: stampedFixture('goroutine', Date.now())});
      assert.equal(res.statusCode, 200, await res.body.text());
    }
    assert.deepEqual(await services(), {status: 200, json: {code: 200, body: ['billing', 'checkout']}});
  } finally {
    await fake.close();
  }
});
