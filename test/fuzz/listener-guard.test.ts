/**
 * The status listener's Host and cross-site checks read headers any web page
 * or client can set. For any header values they answer or refuse, never
 * throw, and what they answer is only what the rules allow.
 */
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkCrossSite, checkHost, hostOfHeader } from '../../src/server/guard.js';
import { fuzzParameters } from '../helpers/fuzz.js';

const ALLOWED = ['pprof.example.com'];
const OWN = 'http://127.0.0.1:10101';

const hostLike = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom(...'abcxyz.-:[]@/ 0123456789'.split('')) }),
  fc.tuple(fc.constantFrom('localhost', 'evil.localhost', 'pprof.example.com', 'rebind.example', '127.0.0.1', '[::1]', 'localhost.evil.com', 'pprof.example.com.evil'), fc.option(fc.integer({ min: 0, max: 99999 }))).map(([h, p]) => (p === null ? h : `${h}:${p}`)),
);

describe('the listener guard under random headers', () => {
  test('checkHost: a Host is answered only when it names an IP, localhost, the listen host or an allowed name', () => {
    fc.assert(
      fc.property(hostLike, (header) => {
        const refusal = checkHost(header, 'pprof-vm', ALLOWED);
        if (refusal !== undefined) {
          assert.equal(refusal.status, 421);
          return;
        }
        const host = hostOfHeader(header);
        assert.ok(host !== undefined, `answered a Host that is not host[:port]: ${JSON.stringify(header)}`);
        assert.ok(isIPv4(host) || isIPv6(host) || host === 'localhost' || host.endsWith('.localhost') || host === 'pprof-vm' || ALLOWED.includes(host), `answered ${JSON.stringify(header)}`);
      }),
      fuzzParameters(3000),
    );
  });

  test('checkCrossSite: a POST with a foreign Origin, a cross-site fetch or a form body is refused', () => {
    const headers = fc.record(
      {
        origin: fc.oneof(fc.string(), fc.constantFrom(OWN, 'null', 'http://127.0.0.1:10101/', 'http://evil.example', 'http://127.0.0.1:10102')),
        'sec-fetch-site': fc.oneof(fc.string(), fc.constantFrom('same-origin', 'none', 'cross-site', 'same-site')),
        'content-type': fc.oneof(fc.string(), fc.constantFrom('text/plain', 'application/json', 'multipart/form-data; boundary=x', 'Application/X-WWW-Form-Urlencoded')),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(headers, fc.constantFrom('POST', 'GET'), (h, method) => {
        const refusal = checkCrossSite(h, method, OWN, `${method} /x`);
        if (refusal !== undefined) {
          assert.equal(refusal.status, 403);
          return;
        }
        const site = h['sec-fetch-site'];
        assert.ok(site === undefined || site === 'same-origin' || site === 'none', `answered Sec-Fetch-Site ${site}`);
        if (h.origin !== undefined) assert.equal(new URL(h.origin).origin, OWN);
        const type = (h['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        if (method === 'POST') assert.ok(!['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'].includes(type), `answered a POST of ${type}`);
      }),
      fuzzParameters(3000),
    );
  });
});
