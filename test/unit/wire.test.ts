import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cursor, VarintError, writeUint64Big } from '../../src/profiles/wire.js';
import { varintBytes } from '../helpers/wire-fields.js';

function uint64Bytes(v: bigint): Buffer {
  const out = Buffer.alloc(10);
  return out.subarray(0, writeUint64Big(out, 0, v));
}

function refused(read: (c: Cursor) => unknown, bytes: number[], kind: VarintError['kind'], end?: number): void {
  const c = new Cursor(Uint8Array.from(bytes));
  assert.throws(
    () => read(c),
    (err: unknown) => err instanceof VarintError && err.kind === kind,
  );
  if (end !== undefined) assert.equal(c.pos, end);
}

describe('Cursor: one bounded varint reader', () => {
  const readers: [string, (c: Cursor, end?: number) => unknown][] = [
    ['varint', (c, end) => c.varint(end)],
    ['varint64', (c, end) => c.varint64(end)],
    ['unsigned', (c, end) => c.unsigned(end)],
    ['int64', (c) => c.int64()],
    ['bigint', (c) => c.bigint()],
  ];

  for (const [name, read] of readers) {
    test(`${name}: a number longer than 10 bytes is refused after 10 bytes, however long the run`, () => {
      refused(read, [...Array(11).fill(0x80), 0x01], 'too_long', 10);
      refused(read, Array(100_000).fill(0xff), 'too_long', 10);
    });

    test(`${name}: a number that runs past the end of the buffer is refused`, () => {
      refused(read, [0x80, 0x80], 'truncated', 2);
      refused(read, [], 'truncated', 0);
    });
  }

  test('a given end holds like the end of the buffer', () => {
    const c = new Cursor(Uint8Array.from([0x96, 0x01, 0x05]));
    assert.throws(() => c.varint(1), (err: unknown) => err instanceof VarintError && err.kind === 'truncated' && err.message === 'truncated: a number runs past the end at byte 1');
    const d = new Cursor(Uint8Array.from([0x96, 0x01, 0x05]));
    assert.equal(d.varint(2), 150);
    assert.equal(d.varint(3), 5);
  });

  test('the longest numbers read exactly', () => {
    const max = new Cursor(uint64Bytes(2n ** 64n - 1n));
    assert.equal(max.unsigned(), 2n ** 64n - 1n);
    assert.equal(max.pos, 10);
    assert.equal(new Cursor(uint64Bytes(-1n)).bigint(), -1n);
    assert.equal(new Cursor(uint64Bytes(-5n)).int64(), -5);
    assert.equal(new Cursor(varintBytes(2 ** 53 - 1)).varint(), 2 ** 53 - 1);
    // a tenth byte past bit 63 is kept, as pprof-format reads it
    assert.equal(new Cursor(Uint8Array.from([...Array(9).fill(0x80), 0x02])).unsigned(), 2n ** 64n);
  });

  test('the message names the byte it stopped at', () => {
    assert.throws(() => new Cursor(Uint8Array.from(Array(12).fill(0x80))).varint(), { message: 'not a protobuf: a number longer than 10 bytes at byte 10' });
  });
});
