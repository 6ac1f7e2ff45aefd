import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { decodeMeta, decodeProfile, encodeRecord, MAX_META_BYTES, readRecord, RECORD_HEADER_BYTES, RECORD_MAGIC, RecordError, scanSegment, SEGMENT_MAGIC } from '../../src/delivery/record.js';
import type { RecordMeta, ScanEvent } from '../../src/delivery/record.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { scrapedProfile } from '../helpers/profiles.js';

// A segment in state_dir is whatever a crash, a full disk or a bad block left
// there. Reading one must give whole records or name the damage (RecordError),
// never throw anything else, never hang, and never size a buffer by a length
// field it has not checked against the file.

/** A segment held in memory, read through the calls the reader makes; it keeps the largest buffer it was asked to fill. */
class MemoryFile {
  largest = 0;
  bytesRead = 0;
  constructor(readonly bytes: Buffer) {}
  get handle(): FileHandle {
    return {
      read: async (buffer: Buffer, offset: number, length: number, position: number) => {
        this.largest = Math.max(this.largest, buffer.length);
        const n = Math.max(0, Math.min(length, this.bytes.length - position));
        this.bytes.copy(buffer, offset, position, position + n);
        this.bytesRead += n;
        return { bytesRead: n, buffer };
      },
    } as unknown as FileHandle;
  }
}

/** What a scan says, checked for the invariants every scan holds. */
async function scan(bytes: Buffer): Promise<{ events: ScanEvent[]; file: MemoryFile }> {
  const file = new MemoryFile(bytes);
  const events: ScanEvent[] = [];
  try {
    await scanSegment(file.handle, bytes.length, (e) => {
      events.push(e);
    });
  } catch (err) {
    assert.ok(err instanceof RecordError, `only RecordError, got ${String(err)}`);
    assert.equal(events.length, 0, 'a segment is refused as a whole or not at all');
    return { events, file };
  }
  // what the reader holds at once is bounded by the file and by a constant, not by a length field
  assert.ok(file.largest <= Math.max(SEGMENT_MAGIC.length, Math.min(bytes.length, READ_BOUND)), `a ${file.largest}-byte buffer for a ${bytes.length}-byte file`);
  const largest = file.largest;
  // the events tile the file after its header: every byte is a record or damage
  let at = SEGMENT_MAGIC.length;
  for (const e of events) {
    assert.equal(e.offset, at, 'events are contiguous');
    assert.ok(e.length > 0, 'every event covers bytes');
    at += e.length;
    if (e.kind === 'record') {
      const body = await readRecord(file.handle, e.offset, e.length);
      assert.deepEqual(decodeMeta(body), e.meta);
    } else {
      assert.ok(e.reason.length > 0);
      if (e.tail) assert.equal(e.offset + e.length, bytes.length, 'a torn tail is at the end');
    }
  }
  assert.equal(at, Math.max(at, bytes.length), 'the events reach the end of the file');
  file.largest = largest;
  return { events, file };
}

/** One read window plus a meta: the most the reader may hold at once. */
const READ_BOUND = 1024 * 1024 + 4 + MAX_META_BYTES;

const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/);
const profileArb: fc.Arbitrary<ScrapedProfile> = fc.record(
  {
    targetId: fc.string({ maxLength: 20 }),
    service: fc.string({ maxLength: 20 }),
    type: fc.string({ maxLength: 12 }),
    labels: fc.dictionary(labelName, fc.string({ unit: 'binary', maxLength: 20 }), { maxKeys: 6, noNullPrototype: true }),
    time: fc.integer({ min: 0, max: 2 ** 45 }),
    durationMs: fc.integer({ min: 0, max: 600_000 }),
    sampleCount: fc.nat(),
    url: fc.webUrl(),
    delta: fc.boolean(),
    data: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  },
  { requiredKeys: ['targetId', 'service', 'type', 'labels', 'time', 'sampleCount', 'url', 'data'], noNullPrototype: true },
);
const toArb = fc.option(fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 3 }), { nil: undefined });
const recordsArb = fc.array(fc.tuple(profileArb, fc.integer({ min: 0, max: 2 ** 45 }), toArb), { minLength: 1, maxLength: 6 });

function segmentOf(records: [ScrapedProfile, number, readonly string[] | undefined][]): { bytes: Buffer; offsets: number[]; lengths: number[] } {
  const parts = records.map(([p, at, to]) => Buffer.concat(encodeRecord(p, at, to)));
  const offsets: number[] = [];
  let at = SEGMENT_MAGIC.length;
  for (const p of parts) {
    offsets.push(at);
    at += p.length;
  }
  return { bytes: Buffer.concat([SEGMENT_MAGIC, ...parts]), offsets, lengths: parts.map((p) => p.length) };
}

/** Bytes that look like records often: the magic and plausible lengths turn up far more than by chance. */
const recordish = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) },
      {
        weight: 2,
        arbitrary: fc.tuple(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffffffff })), fc.nat({ max: 0xffffffff })).map(([length, crc]) => {
          const h = Buffer.alloc(RECORD_HEADER_BYTES);
          h.writeUInt32LE(RECORD_MAGIC, 0);
          h.writeUInt32LE(length, 4);
          h.writeUInt32LE(crc, 8);
          return h;
        }),
      },
      { weight: 1, arbitrary: fc.tuple(profileArb, fc.nat()).map(([p, at]) => Buffer.concat(encodeRecord(p, at))) },
    ),
    { maxLength: 12 },
  )
  .map((parts) => Buffer.concat([SEGMENT_MAGIC, ...parts]));

describe('the queue record reader, over what a crash or a bad disk leaves', () => {
  test('decodeMeta and decodeProfile: a well-formed meta or RecordError, for any body', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      // a meta length that fits, then JSON of any shape
      fc.tuple(fc.jsonValue(), fc.uint8Array({ maxLength: 20 })).map(([v, rest]) => {
        const json = Buffer.from(JSON.stringify(v) ?? 'null');
        const len = Buffer.alloc(4);
        len.writeUInt32LE(json.length, 0);
        return Buffer.concat([len, json, Buffer.from(rest)]);
      }),
      // a real meta with one field replaced by any JSON value
      fc.tuple(profileArb, fc.constantFrom('targetId', 'service', 'type', 'labels', 'time', 'sampleCount', 'url', 'durationMs', 'delta', 'enqueuedAt', 'to'), fc.jsonValue()).map(([p, key, v]) => {
        const { data: _d, ...rest } = p;
        const json = Buffer.from(JSON.stringify({ ...rest, enqueuedAt: 1, [key]: v }));
        const len = Buffer.alloc(4);
        len.writeUInt32LE(json.length, 0);
        return Buffer.concat([len, json]);
      }),
    );
    fc.assert(
      fc.property(body, (b) => {
        let meta: RecordMeta;
        try {
          meta = decodeMeta(b);
        } catch (err) {
          assert.ok(err instanceof RecordError, `only RecordError, got ${String(err)}`);
          assert.throws(() => decodeProfile(b), RecordError);
          return;
        }
        assertWellFormed(meta);
        const { profile } = decodeProfile(b);
        assert.ok(Buffer.isBuffer(profile.data));
      }),
      fuzzParameters(3000),
    );
  });

  test('whole records read back as they were written', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, async (records) => {
        const seg = segmentOf(records);
        const { events, file } = await scan(seg.bytes);
        assert.deepEqual(
          events.map((e) => [e.kind, e.offset]),
          seg.offsets.map((o) => ['record', o]),
        );
        for (const [i, [p, at, to]] of records.entries()) {
          const { meta, profile } = decodeProfile(await readRecord(file.handle, seg.offsets[i]!, seg.lengths[i]!));
          assert.equal(meta.enqueuedAt, at);
          assert.deepEqual(meta.to, to);
          assert.deepEqual({ ...profile, data: Buffer.from(profile.data) }, p);
        }
      }),
      fuzzParameters(2000),
    );
  });

  test('random bytes after a segment header: records or named damage', async () => {
    await fc.assert(
      fc.asyncProperty(recordish, async (bytes) => {
        await scan(bytes);
      }),
      fuzzParameters(3000),
    );
  });

  test('any file at all: refused whole, or read', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (bytes) => {
        await scan(Buffer.from(bytes));
      }),
      fuzzParameters(2000),
    );
  });

  test('a segment cut short anywhere: the records before the cut, then at most a torn tail', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, fc.double({ min: 0, max: 1, noNaN: true }), async (records, where) => {
        const seg = segmentOf(records);
        const cut = SEGMENT_MAGIC.length + Math.floor((seg.bytes.length - SEGMENT_MAGIC.length) * where);
        const { events } = await scan(seg.bytes.subarray(0, cut));
        const whole = seg.offsets.filter((o, i) => o + seg.lengths[i]! <= cut);
        assert.deepEqual(
          events.filter((e) => e.kind === 'record').map((e) => e.offset),
          whole,
        );
        const damage = events.filter((e) => e.kind === 'damage');
        assert.ok(damage.length <= 1);
        if (damage[0]) assert.equal(damage[0].kind === 'damage' && damage[0].tail, true, 'a cut is a torn tail, not damage in the middle');
      }),
      fuzzParameters(2000),
    );
  });

  test('bytes flipped anywhere: every record they did not touch is still found', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (records, flips) => {
        const seg = segmentOf(records);
        const bytes = Buffer.from(seg.bytes);
        const touched = new Set<number>();
        for (const [where, mask] of flips) {
          const at = SEGMENT_MAGIC.length + Math.floor((bytes.length - SEGMENT_MAGIC.length) * where);
          bytes[at] = bytes[at]! ^ mask;
          touched.add(seg.offsets.findLastIndex((o) => o <= at));
        }
        const { events } = await scan(bytes);
        const found = new Set(events.filter((e) => e.kind === 'record').map((e) => e.offset));
        seg.offsets.forEach((o, i) => {
          if (!touched.has(i)) assert.ok(found.has(o), `record ${i} at ${o} was not touched and must be found`);
        });
      }),
      fuzzParameters(2000),
    );
  });

  test('a length field of any size: no buffer beyond the file, no hang', async () => {
    await fc.assert(
      fc.asyncProperty(recordsArb, fc.nat({ max: 5 }), fc.nat({ max: 0xffffffff }), async (records, which, length) => {
        const seg = segmentOf(records);
        const i = Math.min(which, seg.offsets.length - 1);
        const bytes = Buffer.from(seg.bytes);
        bytes.writeUInt32LE(length, seg.offsets[i]! + 4);
        await scan(bytes);
      }),
      fuzzParameters(2000),
    );
  });
});

function assertWellFormed(meta: RecordMeta): void {
  for (const k of ['targetId', 'service', 'type', 'url'] as const) assert.equal(typeof meta[k], 'string', k);
  for (const k of ['time', 'sampleCount', 'enqueuedAt'] as const) assert.ok(Number.isFinite(meta[k]), k);
  assert.ok(meta.durationMs === undefined || Number.isFinite(meta.durationMs));
  assert.ok(meta.delta === undefined || typeof meta.delta === 'boolean');
  assert.ok(typeof meta.labels === 'object' && meta.labels !== null && !Array.isArray(meta.labels));
  for (const v of Object.values(meta.labels)) assert.equal(typeof v, 'string');
  assert.ok(meta.to === undefined || (Array.isArray(meta.to) && meta.to.every((t) => typeof t === 'string')));
}

// Findings of the properties above, kept as plain cases.
describe('queue record reader findings', () => {
  test('a meta that is not JSON is RecordError, not SyntaxError', () => {
    const body = Buffer.from([2, 0, 0, 0, 0x7b, 0x7b]);
    assert.throws(() => decodeMeta(body), (err: Error) => err instanceof RecordError && /meta is not JSON/.test(err.message));
  });

  test('a meta whose labels are not a map of strings is refused', () => {
    for (const labels of [null, 'x', ['a'], { a: 1 }]) {
      const json = Buffer.from(JSON.stringify({ targetId: 't', service: 's', type: 'heap', labels, time: 1, sampleCount: 1, url: 'u', enqueuedAt: 1 }));
      const body = Buffer.concat([Buffer.from([json.length, 0, 0, 0]), json]);
      assert.throws(() => decodeMeta(body), RecordError, JSON.stringify(labels));
    }
  });

  test('a meta whose `to` is not a list of names is refused', () => {
    const json = Buffer.from(JSON.stringify({ targetId: 't', service: 's', type: 'heap', labels: {}, time: 1, sampleCount: 1, url: 'u', enqueuedAt: 1, to: 7 }));
    assert.throws(() => decodeMeta(Buffer.concat([Buffer.from([json.length, 0, 0, 0]), json])), RecordError);
  });

  test('damage full of false record starts is read in linear time', async () => {
    // a header every 12 bytes, each claiming a body that runs to the end of the file with a wrong checksum:
    // checking each one in full is quadratic (256 KiB took 8.6 s and read 2.7 GiB)
    const size = 4 * 1024 * 1024;
    const body = Buffer.alloc(size);
    for (let p = 0; p + RECORD_HEADER_BYTES <= size; p += RECORD_HEADER_BYTES) {
      body.writeUInt32LE(RECORD_MAGIC, p);
      body.writeUInt32LE(size - p - RECORD_HEADER_BYTES, p + 4);
    }
    const good = Buffer.concat(encodeRecord(scrapedProfile({ targetId: 't', service: 's', labels: {}, time: 1, url: 'u', data: Buffer.alloc(10) }), 1));
    const bytes = Buffer.concat([SEGMENT_MAGIC, good, body]);
    const started = Date.now();
    const { events, file } = await scan(bytes);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['record', 'damage'],
    );
    assert.ok(file.bytesRead < 8 * bytes.length, `read ${file.bytesRead} bytes of a ${bytes.length}-byte file`);
    assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
  });

  test('a record claiming most of a large file is checked without holding it', async () => {
    const claim = 6 * 1024 * 1024;
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header.writeUInt32LE(RECORD_MAGIC, 0);
    header.writeUInt32LE(claim, 4);
    const bytes = Buffer.concat([SEGMENT_MAGIC, header, Buffer.alloc(claim + 100)]);
    const { events, file } = await scan(bytes);
    assert.deepEqual(
      events.map((e) => (e.kind === 'damage' ? e.reason : e.kind)),
      ['checksum mismatch'],
    );
    assert.ok(file.largest <= 1024 * 1024 + 64, `a ${file.largest}-byte buffer`);
  });

  test('a whole record larger than a read window reads back', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const p = scrapedProfile({ targetId: 't', service: 's', labels: { a: 'b' }, time: 1, url: 'u', data });
    const record = Buffer.concat(encodeRecord(p, 9));
    const { events, file } = await scan(Buffer.concat([SEGMENT_MAGIC, record, record]));
    assert.deepEqual(
      events.map((e) => [e.kind, e.length]),
      [
        ['record', record.length],
        ['record', record.length],
      ],
    );
    assert.ok(file.largest <= 1024 * 1024 + 64, `a ${file.largest}-byte buffer while scanning`);
  });
});
