import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BodyError, checkTraceBody, TRACE_HEADER_SIZE, traceVersion } from '../../src/scrape/body.js';
import { fuzzParameters } from '../helpers/fuzz.js';

// A trace endpoint's answer is whatever the target sent: the check returns the
// body as it came, or refuses it with a BodyError, never anything else; and it
// returns a body only when it starts with a Go trace header.

const header = fc.tuple(fc.integer({ min: 0, max: 1200 }), fc.integer({ min: 0, max: 4 })).map(([minor, pad]) => Buffer.from(`go 1.${minor} trace${'\0'.repeat(pad)}`, 'latin1'));

const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc.tuple(header, fc.uint8Array({ maxLength: 32 })).map(([h, rest]) => Buffer.concat([h, rest])),
);

const contentTypes = fc.option(fc.constantFrom('application/octet-stream', 'text/html; charset=utf-8', 'application/json', 'text/plain', ''), { nil: undefined });

void test('trace bodies under random bytes: the body as it came, or a BodyError; a body only behind a Go trace header', () => {
  fc.assert(
    fc.property(bodies, contentTypes, (body, contentType) => {
      let out: Buffer;
      try {
        out = checkTraceBody(body, contentType);
      } catch (err) {
        assert.ok(err instanceof BodyError, `only BodyError, got ${String(err)}`);
        return;
      }
      assert.equal(out, body);
      assert.ok(out.length > TRACE_HEADER_SIZE);
      const minor = traceVersion(out);
      assert.ok(minor !== undefined && minor >= 5);
      assert.match(out.subarray(0, TRACE_HEADER_SIZE).toString('latin1'), /^go 1\.\d+ trace\0+$/);
    }),
    fuzzParameters(3000),
  );
});
