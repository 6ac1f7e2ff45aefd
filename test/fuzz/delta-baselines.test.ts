import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { decodeBaseline, encodeBaseline } from '../../src/delivery/baselines.js';
import { deltaOf } from '../../src/profiles/delta.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { fixture } from '../helpers/profiles.js';

// A baseline file in state_dir is whatever a crash, a power cut or someone
// else left there. Reading one gives a baseline a delta can use (sorted,
// distinct, finite keys; finite values, `width` of them a key) or says why
// not; it never throws. The checksum stops most damage, so the mutations are
// also written with a checksum made to match, as a hostile file would be.

const SERIES = 'target\0allocs';
const GOOD = encodeBaseline(SERIES, deltaOf(undefined, fixture('allocs'), 0).baseline!);

function withChecksum(buf: Buffer): Buffer {
  if (buf.length >= 12) buf.writeUInt32LE(crc32(buf.subarray(12)), 8);
  return buf;
}

function checked(buf: Buffer): void {
  const got = decodeBaseline(buf, SERIES);
  if (typeof got === 'string') return;
  const width = got.signature.split(',').length;
  assert.equal(got.values.length, got.keys.length * width);
  for (let i = 0; i < got.keys.length; i++) {
    assert.ok(Number.isFinite(got.keys[i]));
    if (i > 0) assert.ok(got.keys[i]! > got.keys[i - 1]!);
  }
  for (const v of got.values) assert.ok(Number.isFinite(v));
}

const mutation = fc.oneof(
  fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }).map(({ at, byte }) => (b: Buffer) => {
    const c = Buffer.from(b);
    if (c.length > 0) c[at % c.length] = byte;
    return c;
  }),
  fc.nat().map((n) => (b: Buffer) => b.subarray(0, n % (b.length + 1))),
  fc.uint8Array({ maxLength: 64 }).map((extra) => (b: Buffer) => Buffer.concat([b, extra])),
  fc.record({ at: fc.integer({ min: 12, max: 35 }), value: fc.nat() }).map(({ at, value }) => (b: Buffer) => {
    // a header field set to anything: lengths, counts, the width
    const c = Buffer.from(b);
    const pos = at - ((at - 12) % 4);
    if (c.length >= pos + 4) c.writeUInt32LE(value >>> 0, pos);
    return c;
  }),
);

void test('a damaged or hostile baseline file is a baseline a delta can use, or a reason, never a throw', () => {
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      let buf = GOOD;
      for (const m of mutations) buf = m(buf);
      checked(buf);
      checked(withChecksum(Buffer.from(buf)));
    }),
    fuzzParameters(2000),
  );
});

void test('random bytes are no baseline', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      assert.equal(typeof decodeBaseline(Buffer.from(bytes), SERIES), 'string');
    }),
    fuzzParameters(1000),
  );
});
