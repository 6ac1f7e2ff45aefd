import assert from 'node:assert/strict';
import {open, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {decodeProfile, encodeRecord, readRecord, RECORD_HEADER_BYTES, scanSegment, SEGMENT_MAGIC} from '../../src/delivery/record.js';
import type {ScanEvent} from '../../src/delivery/record.js';
import {tempDir} from '../helpers/delivery.js';
import {taggedProfile} from '../helpers/profiles.js';

async function segmentOf(records: Buffer[]): Promise<{path: string; offsets: number[]; cleanup: () => Promise<void>}> {
  const {dir, cleanup} = await tempDir();
  const path = join(dir, 'x.seg');
  const offsets: number[] = [];
  let at = SEGMENT_MAGIC.length;
  for (const r of records) {
    offsets.push(at);
    at += r.length;
  }
  await writeFile(path, Buffer.concat([SEGMENT_MAGIC, ...records]));
  return {path, offsets, cleanup};
}

async function scan(path: string): Promise<ScanEvent[]> {
  const fh = await open(path, 'r');
  try {
    const events: ScanEvent[] = [];
    await scanSegment(fh, (await fh.stat()).size, (e) => {
      events.push(e);
    });
    return events;
  } finally {
    await fh.close();
  }
}

void test('a record reads back as the profile it was made from', async () => {
  const profile = taggedProfile(7, 500, {durationMs: 10_000, delta: true});
  const record = Buffer.concat(encodeRecord(profile, 1234, ['a', 'b']));
  const seg = await segmentOf([record]);
  try {
    const fh = await open(seg.path, 'r');
    const body = await readRecord(fh, SEGMENT_MAGIC.length, record.length);
    await fh.close();
    const {meta, profile: back} = decodeProfile(body);
    assert.equal(meta.enqueuedAt, 1234);
    assert.deepEqual(meta.to, ['a', 'b']);
    assert.deepEqual({...back, data: Buffer.from(back.data)}, profile);
  } finally {
    await seg.cleanup();
  }
});

void test('a scan finds each whole record, skips a damaged one to the next, and tells a torn tail apart', async () => {
  const records = [0, 1, 2, 3].map((i) => Buffer.concat(encodeRecord(taggedProfile(i, 300), 1000 + i)));
  // a flipped byte in record 1's profile bytes, half of a record 4 at the end
  const damaged = Buffer.from(records[1]!);
  damaged[damaged.length - 10] = damaged[damaged.length - 10]! ^ 0xff;
  const torn = Buffer.concat(encodeRecord(taggedProfile(4, 300), 1004)).subarray(0, 100);
  const seg = await segmentOf([records[0]!, damaged, records[2]!, records[3]!, torn]);
  try {
    const events = await scan(seg.path);
    assert.deepEqual(
      events.map((e) => (e.kind === 'record' ? `record@${e.offset}:${e.meta.labels['seq']}` : `damage@${e.offset}+${e.length}:${e.reason}:${e.tail}`)),
      [
        `record@${seg.offsets[0]}:0`,
        `damage@${seg.offsets[1]}+${records[1]!.length}:checksum mismatch:false`,
        `record@${seg.offsets[2]}:2`,
        `record@${seg.offsets[3]}:3`,
        `damage@${seg.offsets[4]}+100:truncated body:true`,
      ],
    );
  } finally {
    await seg.cleanup();
  }
});

void test('garbage in the middle is one damaged stretch, and the scan resumes at the next record', async () => {
  const records = [0, 1].map((i) => Buffer.concat(encodeRecord(taggedProfile(i, 300), 1000 + i)));
  const garbage = Buffer.alloc(77, 0x42);
  const seg = await segmentOf([records[0]!, garbage, records[1]!]);
  try {
    const events = await scan(seg.path);
    assert.equal(events.length, 3);
    assert.equal(events[1]!.kind, 'damage');
    assert.equal(events[1]!.length, 77);
    assert.equal(events[1]!.kind === 'damage' && events[1]!.tail, false);
    assert.equal(events[2]!.kind === 'record' && events[2]!.meta.labels['seq'], '1');
  } finally {
    await seg.cleanup();
  }
});

void test('a file that is not a segment is refused as a whole', async () => {
  const {dir, cleanup} = await tempDir();
  try {
    const path = join(dir, 'bad.seg');
    await writeFile(path, Buffer.from('hello, not a segment'));
    await assert.rejects(scan(path), /not a spool segment/);
  } finally {
    await cleanup();
  }
});

void test('reading a record checks it again', async () => {
  const record = Buffer.concat(encodeRecord(taggedProfile(1, 300), 1));
  record[RECORD_HEADER_BYTES + 5] = record[RECORD_HEADER_BYTES + 5]! ^ 1;
  const seg = await segmentOf([record]);
  try {
    const fh = await open(seg.path, 'r');
    await assert.rejects(readRecord(fh, SEGMENT_MAGIC.length, record.length), /checksum mismatch/);
    await fh.close();
  } finally {
    await seg.cleanup();
  }
});
