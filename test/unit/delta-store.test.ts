import assert from 'node:assert/strict';
import {test} from 'node:test';
import {Label} from 'pprof-format';
import type {Profile} from 'pprof-format';
import {DeltaStore} from '../../src/profiles/delta.js';
import {decodePprof, stackKey, valuesByStack} from '../helpers/pprof-stacks.js';
import {fixture} from '../helpers/profiles.js';

const decode = decodePprof;
const encode = (p: Profile): Buffer => Buffer.from(p.encode());

/**
 * The same process a while later: cumulative values grown by a known amount,
 * locations numbered afresh and listed in another order, samples shuffled.
 */
function later(base: Buffer, grow: (sampleIndex: number) => number, cumulative: number[], dtNs: number): Profile {
  const p = decode(base);
  p.sample.forEach((s, i) => {
    for (const c of cumulative) s.value[c] = Number(s.value[c]) + grow(i) * (c + 1);
  });
  const n = p.location.length;
  const newId = new Map(p.location.map((l, i) => [Number(l.id), n - i]));
  for (const l of p.location) l.id = newId.get(Number(l.id))!;
  p.location.reverse();
  for (const s of p.sample) s.locationId = s.locationId.map((id) => newId.get(Number(id))!);
  p.sample.reverse();
  p.timeNanos = BigInt(p.timeNanos) + BigInt(dtNs);
  return p;
}

function cumulativeIndexes(p: Profile): number[] {
  return p.sampleType.flatMap((t, i) => (['alloc_objects', 'alloc_space', 'contentions', 'delay'].includes(p.stringTable.strings[Number(t.type)]!) ? [i] : []));
}

void test('the first profile only sets the baseline; the next is the difference, matched by address across renumbered locations', () => {
  const base = fixture('allocs.pb.gz');
  const p0 = decode(base);
  const cum = cumulativeIndexes(p0);
  assert.deepEqual(cum, [0, 1]);
  const store = new DeltaStore();
  assert.deepEqual(store.compute('t/allocs', base, 0), {kind: 'baseline', reason: 'first'});
  const p1 = later(base, (i) => (i % 3 === 0 ? 0 : i + 1), cum, 15e9);
  const r = store.compute('t/allocs', encode(p1), 0);
  assert.equal(r.kind, 'delta');
  if (r.kind !== 'delta') return;
  const d = decode(r.data);
  const before = valuesByStack(p0);
  const after = valuesByStack(p1);
  const got = valuesByStack(d);
  for (const [k, row] of after) {
    const old = before.get(k)!;
    const want = row.map((v, j) => (cum.includes(j) ? v - old[j]! : v));
    if (want.every((v) => v === 0)) assert.equal(got.has(k), false, `unchanged sample ${k} is left out`);
    else assert.deepEqual(got.get(k), want, k);
  }
  assert.equal(BigInt(d.timeNanos), BigInt(p1.timeNanos));
  assert.equal(Number(d.durationNanos), 15e9);
  assert.equal(r.durationMs, 15_000);
  assert.equal(r.sampleCount, d.sample.length);
});

void test('a block profile whose counters did not move yields an empty delta', () => {
  const base = fixture('block.pb.gz');
  const store = new DeltaStore();
  store.compute('b', base, 0);
  const p = decode(base);
  p.timeNanos = BigInt(p.timeNanos) + BigInt(1e9);
  const r = store.compute('b', encode(p), 0);
  assert.equal(r.kind, 'delta');
  assert.equal(r.kind === 'delta' && r.sampleCount, 0);
});

void test('counters that go down mean a restart: the profile becomes the baseline, and the next delta is against it', () => {
  const base = fixture('mutex.pb.gz');
  const cum = cumulativeIndexes(decode(base));
  const store = new DeltaStore();
  store.compute('m', encode(later(base, () => 100, cum, 1e9)), 0);
  // the restarted process: smaller counters than the baseline
  const restarted = later(base, () => 0, cum, 2e9);
  assert.deepEqual(store.compute('m', encode(restarted), 0), {kind: 'baseline', reason: 'restart'});
  const next = later(base, () => 5, cum, 3e9);
  const r = store.compute('m', encode(next), 0);
  assert.equal(r.kind, 'delta');
  if (r.kind !== 'delta') return;
  const d = decode(r.data);
  for (const s of d.sample) assert.deepEqual(s.value.map(Number), cum.map((c) => 5 * (c + 1)));
  assert.equal(Number(d.durationNanos), 1e9);
});

void test('a profile without cumulative sample types is sent as it is', () => {
  const store = new DeltaStore();
  assert.deepEqual(store.compute('c', fixture('cpu.pb.gz'), 0), {kind: 'as-is'});
  assert.deepEqual(store.compute('g', fixture('goroutine.pb.gz'), 0), {kind: 'as-is'});
  assert.equal(store.size, 0);
});

void test('labels match in any order, and locations without addresses match by their lines', () => {
  const p = decode(fixture('block.pb.gz'));
  for (const l of p.location) l.address = 0;
  const key = p.stringTable.dedup('k');
  const other = p.stringTable.dedup('other');
  const v1 = p.stringTable.dedup('v1');
  const v2 = p.stringTable.dedup('v2');
  for (const s of p.sample) s.label = [new Label({key, str: v1}), new Label({key: other, str: v2})];
  const a = encode(p);
  for (const s of p.sample) {
    s.label.reverse();
    s.value = s.value.map((v) => Number(v) + 1);
  }
  p.timeNanos = BigInt(p.timeNanos) + BigInt(1e9);
  const store = new DeltaStore();
  store.compute('x', a, 0);
  const r = store.compute('x', encode(p), 0);
  assert.equal(r.kind, 'delta');
  if (r.kind !== 'delta') return;
  const d = decode(r.data);
  assert.equal(d.sample.length, p.sample.length);
  for (const s of d.sample) assert.deepEqual(s.value.map(Number), [1, 1]);
});

void test('baseline memory is bounded: the least recently used series go, and start over', () => {
  const base = fixture('allocs-10k.pb.gz');
  const one = new DeltaStore();
  one.compute('s0', base, 0);
  const per = one.bytes;
  const samples = decode(base).sample.length;
  // 8 bytes of key and 8 per cumulative type (alloc_objects, alloc_space) a sample, and a little more
  assert.ok(per > samples * 24 * 0.9 && per < samples * 24 + 4096, `one ${samples}-sample baseline takes ${per} bytes`);
  const store = new DeltaStore({maxBytes: per * 2.5});
  for (const s of ['s0', 's1', 's2', 's3']) store.compute(s, base, 0);
  assert.equal(store.size, 2);
  assert.ok(store.bytes <= per * 2.5);
  assert.equal(store.evictions, 2);
  assert.equal(store.has('s0'), false);
  assert.equal(store.has('s3'), true);
  assert.deepEqual(store.compute('s0', base, 0), {kind: 'baseline', reason: 'first'});
});

/**
 * The same profile with each sample's location ids and values written one
 * varint field each instead of packed (protobuf allows both; pprof-format
 * writes packed), and a field profile.proto does not define in each sample.
 */
function unpacked(raw: Buffer): Buffer {
  const out: number[] = [];
  const varint = (b: Buffer, at: number): [number, number] => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const x = b[at++]!;
      v += (x & 0x7f) * scale;
      if (x < 0x80) return [v, at];
      scale *= 128;
    }
  };
  const put = (n: number): void => {
    while (n > 127) {
      out.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
  };
  for (let at = 0; at < raw.length; ) {
    const key = raw[at++]!;
    const [value, after] = varint(raw, at);
    const start = after;
    const end = (key & 7) === 0 ? after : after + value;
    if (key !== 0x12) {
      out.push(...raw.subarray(at - 1, end));
      at = end;
      continue;
    }
    const body: number[] = [];
    for (let p = start; p < end; ) {
      const k = raw[p++]!;
      const [len, from] = varint(raw, p);
      if (k === 0x0a || k === 0x12) {
        for (let q = from; q < from + len; ) {
          const [, next] = varint(raw, q);
          body.push(k - 2, ...raw.subarray(q, next));
          q = next;
        }
      } else body.push(k, ...raw.subarray(p, from + len));
      p = from + len;
    }
    body.push(0x78, 0x07); // field 15, varint 7
    out.push(0x12);
    put(body.length);
    out.push(...body);
    at = end;
  }
  return Buffer.from(out);
}

void test('unpacked ids and values and unknown sample fields read as packed ones do', () => {
  const base = fixture('block.pb.gz');
  const cum = cumulativeIndexes(decode(base));
  const p1 = later(base, (i) => i + 1, cum, 5e9);
  const packed = new DeltaStore();
  const loose = new DeltaStore();
  packed.compute('b', base, 0);
  const looseBase = unpacked(encode(decode(base)));
  assert.ok(looseBase.length > encode(decode(base)).length);
  loose.compute('b', looseBase, 0);
  const a = packed.compute('b', encode(p1), 0);
  const b = loose.compute('b', unpacked(encode(p1)), 0);
  assert.ok(a.kind === 'delta' && b.kind === 'delta');
  assert.deepEqual(valuesByStack(decode(b.data)), valuesByStack(decode(a.data)));
  assert.equal(b.sampleCount, a.sampleCount);
});

void test('a stack of the baseline missing from the new profile means a restart: larger new values are not diffed against the dead process', () => {
  const base = fixture('allocs.pb.gz');
  const cum = cumulativeIndexes(decode(base));
  const store = new DeltaStore();
  assert.deepEqual(store.compute('a', base, 0), {kind: 'baseline', reason: 'first'});
  // the new process has met only some of the old stacks so far, each more often than the old one did
  const restarted = later(base, () => 1_000_000, cum, 1e9);
  const kept = new Set(decode(base).sample.map((_, i) => stackKey(decode(base), i)).filter((_, i) => i % 2 === 0));
  restarted.sample = restarted.sample.filter((_, i) => kept.has(stackKey(restarted, i)));
  assert.ok(restarted.sample.length > 0 && valuesByStack(restarted).size < valuesByStack(decode(base)).size, 'some stacks are gone');
  assert.deepEqual(store.compute('a', encode(restarted), 0), {kind: 'baseline', reason: 'restart'});
  // the next scrape of the new process is diffed against its own first profile
  const next = decode(encode(restarted));
  for (const s of next.sample) for (const c of cum) s.value[c] = Number(s.value[c]) + 5;
  next.timeNanos = BigInt(next.timeNanos) + BigInt(1e9);
  const r = store.compute('a', encode(next), 0);
  assert.equal(r.kind, 'delta');
  if (r.kind !== 'delta') return;
  for (const row of valuesByStack(decode(r.data)).values()) for (const c of cum) assert.equal(row[c]! % 5, 0, 'only what the new process added');
  assert.equal(Number(decode(r.data).durationNanos), 1e9);
});
