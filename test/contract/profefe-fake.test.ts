import assert from 'node:assert/strict';
import {after, before, test} from 'node:test';
import {gzipSync} from 'node:zlib';
import {request} from 'undici';
import {goCleanPath, goUnescape, GoQuery, parseProfefeLabels} from '../helpers/profefe-contract.js';
import {startProfefeFake} from '../helpers/profefe-fake.js';
import type {ProfefeFake} from '../helpers/profefe-fake.js';
import {emptyPprof, fixture} from '../helpers/profiles.js';

const heap = fixture('heap');

let fake: ProfefeFake;
before(async () => {
  fake = await startProfefeFake();
});
after(async () => {
  await fake.close();
});

async function post(query: string, body: Buffer = heap, path = '/api/0/profiles'): Promise<{status: number; json: unknown; headers: Record<string, unknown>}> {
  const res = await request(`${fake.url}${path}${query}`, {method: 'POST', body});
  const text = await res.body.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // Not every answer is JSON (redirects, 404s).
  }
  return {status: res.statusCode, json, headers: res.headers};
}

void test('accepts a real heap profile and records it as sent', async () => {
  const before = fake.received.length;
  const {status, json} = await post('?service=api&type=heap&labels=instance=10.0.0.5:6060,env=prod');
  assert.equal(status, 200);
  const reply = json as {code: number; body: {id: string; type: string; service: string}};
  assert.equal(reply.code, 200);
  assert.equal(reply.body.type, 'heap');
  assert.equal(reply.body.service, 'api');
  assert.match(reply.body.id, /^[0-9a-f]{20}$/);
  const got = fake.received[before];
  assert.ok(got);
  assert.equal(got.service, 'api');
  assert.equal(got.type, 'heap');
  assert.deepEqual(got.labels, [['instance', '10.0.0.5:6060'], ['env', 'prod']]);
  assert.ok(got.body.equals(heap), 'body kept byte for byte');
  assert.ok(got.sampleCount > 0);
});

void test('accepts a raw (not gzipped) profile and a trailing slash', async () => {
  const {gunzipSync} = await import('node:zlib');
  const {status} = await post('?service=api&type=heap', gunzipSync(heap), '/api/0/profiles/');
  assert.equal(status, 200);
});

void test('rejects what profefe rejects, with its status and error', async () => {
  // HandleCreateProfile wraps the parser's error: "malformed profile (could not parse pprof profile: …)"
  const MALFORMED = /^malformed profile \(could not parse pprof profile: .+\)$/;
  const cases: Array<{name: string; query: string; body?: Buffer; status: number; error: string | RegExp}> = [
    {name: 'unknown type', query: '?service=api&type=allocs', status: 400, error: 'bad request: bad profile type "allocs": bad profile type unknown'},
    {name: 'missing type', query: '?service=api', status: 400, error: 'bad request: unknown profile type unknown'},
    {name: 'missing service', query: '?type=heap', status: 400, error: 'bad request: missing service'},
    {name: 'empty service', query: '?service=&type=heap', status: 400, error: 'bad request: missing service'},
    // %25zz reaches the label parser as %zz, which Go's QueryUnescape refuses.
    {name: 'bad label escape', query: '?service=api&type=heap&labels=k%3D%25zz', status: 400, error: 'bad request: bad labels "k=%zz": invalid URL escape "%zz"'},
    {name: 'empty profile', query: '?service=api&type=heap', body: gzipSync(emptyPprof()), status: 400, error: MALFORMED},
    {name: 'HTML body', query: '?service=api&type=heap', body: Buffer.from('<html><body>404</body></html>'), status: 400, error: MALFORMED},
    {name: 'truncated gzip', query: '?service=api&type=heap', body: heap.subarray(0, heap.length / 2), status: 400, error: MALFORMED},
  ];
  for (const c of cases) {
    const count = fake.received.length;
    const {status, json} = await post(c.query, c.body);
    assert.equal(status, c.status, c.name);
    if (typeof c.error === 'string') assert.deepEqual(json, {code: c.status, error: c.error}, c.name);
    else assert.match(String((json as {error?: unknown}).error), c.error, c.name);
    assert.equal(fake.received.length, count, `${c.name}: nothing recorded`);
  }
});

void test('decodes double-escaped labels as profefe does', async () => {
  // The daemon escapes each key and value, joins them, then escapes the
  // whole string as the query value: k=x / v,y travels as k%253Dx%3Dv%252Cy.
  const joined = `${encodeURIComponent('k=x')}=${encodeURIComponent('v,y')},${encodeURIComponent('a b')}=${encodeURIComponent('c+d')}`;
  assert.equal(joined, 'k%3Dx=v%2Cy,a%20b=c%2Bd');
  const {status} = await post(`?service=api&type=heap&labels=${encodeURIComponent(joined)}`);
  assert.equal(status, 200);
  assert.deepEqual(fake.received.at(-1)?.labels, [['k=x', 'v,y'], ['a b', 'c+d']]);
});

void test('label parsing follows profefe: trimmed, + is a space, empty keys skipped', () => {
  assert.deepEqual(parseProfefeLabels(' a = 1 ,=skipped,b=x+y,c,d=%41'), [['a', '1'], ['b', 'x y'], ['c', ''], ['d', 'A']]);
  assert.deepEqual(parseProfefeLabels(''), []);
  assert.throws(() => parseProfefeLabels('k=%4'), /invalid URL escape "%4"/);
  // The key is unescaped and found empty before the value is looked at.
  assert.deepEqual(parseProfefeLabels('=%zz'), []);
});

void test('query parsing follows Go: a pair with a bad escape or a semicolon is dropped', async () => {
  const q = new GoQuery('service=a&labels=%zz&x=1;y=2&type=heap&type=cpu');
  assert.equal(q.get('service'), 'a');
  assert.equal(q.get('labels'), '');
  assert.equal(q.get('x'), '');
  assert.equal(q.get('type'), 'heap');
  // So profefe accepts labels=%zz, with no labels at all.
  const {status} = await post('?service=api&type=heap&labels=%zz');
  assert.equal(status, 200);
  assert.deepEqual(fake.received.at(-1)?.labels, []);
  assert.equal(goUnescape('a+b%20c'), 'a b c');
  assert.equal(goUnescape('a+b', 'path'), 'a+b');
});

void test('an unclean path gets ServeMux\'s 301, not a profile', async () => {
  assert.equal(goCleanPath('/api//0/profiles'), '/api/0/profiles');
  assert.equal(goCleanPath('/api/0/profiles/'), '/api/0/profiles/');
  const count = fake.received.length;
  const {status, headers} = await post('?service=api&type=heap', heap, '//api/0/profiles');
  assert.equal(status, 301);
  assert.equal(headers.location, '/api/0/profiles?service=api&type=heap');
  assert.equal(fake.received.length, count);
});

void test('GET /api/0/version answers 200 JSON', async () => {
  const res = await request(`${fake.url}/api/0/version`);
  assert.equal(res.statusCode, 200);
  const json = (await res.body.json()) as {code: number; body: {version: string}};
  assert.equal(json.code, 200);
  assert.equal(typeof json.body.version, 'string');
});

void test('setFailure overrides answers until cleared', async () => {
  const count = fake.received.length;
  fake.setFailure((req) => (req.method === 'POST' ? {status: 503, body: 'down', headers: {'retry-after': '2'}} : undefined));
  const failed = await post('?service=api&type=heap');
  assert.equal(failed.status, 503);
  assert.equal(failed.headers['retry-after'], '2');
  assert.equal(failed.json, 'down');
  fake.setFailure((req) => (req.seq >= 0 ? {destroy: true} : undefined));
  await assert.rejects(post('?service=api&type=heap'));
  fake.setFailure(undefined);
  assert.equal((await post('?service=api&type=heap')).status, 200);
  assert.equal(fake.received.length, count + 1);
  const got = await fake.waitForProfiles(count + 1, 1000);
  assert.equal(got.length, count + 1);
});
