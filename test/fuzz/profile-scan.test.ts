import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Label, Line, Profile, Sample } from 'pprof-format';
import { DEFAULT_PROFILE_LIMITS } from '../../src/config/index.js';
import type { ProfileLimits } from '../../src/config/index.js';
import { decodeProfile, openProfile } from '../../src/profiles/decode.js';
import { readProfileNames } from '../../src/profiles/names.js';
import { sampleLabelGroups } from '../../src/repositories/pyroscope-push.js';
import { CUMULATIVE_SAMPLE_TYPES, DeltaStore } from '../../src/profiles/delta.js';
import { ProfileError, ProfileLimitError } from '../../src/profiles/errors.js';
import { scanProfile } from '../../src/profiles/scan.js';
import type { ProfileSummary } from '../../src/profiles/scan.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { decodePprof, profileCounts, valuesByStack } from '../helpers/pprof-stacks.js';
import { fixture } from '../helpers/profiles.js';

// Response bodies and queue items read back after a crash are whatever a
// target or a damaged disk made them. The scan and the bounded decoder must
// return or throw a ProfileError, never anything else, and never hang; what
// the scan accepts, pprof-format decodes to the very counts the scan held to
// the limits (if the two read a profile differently, a profile could carry
// more than the scan counted).

const FIXTURES = ['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'cpu'].map((name) => gunzipSync(fixture(name)));

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** The scan's answer, or the ProfileError it threw; anything else fails the property. */
function scanOrError(bytes: Uint8Array, limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): ProfileSummary | ProfileError {
  try {
    return scanProfile(bytes, limits);
  } catch (err) {
    assert.ok(err instanceof ProfileError, `only ProfileError, got ${String(err)}`);
    return err;
  }
}

/** What the scan accepts decodes, to the counts the scan made; what it refuses, the decoder refuses too. */
function checkAgreement(bytes: Uint8Array, limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): void {
  const scanned = scanOrError(bytes, limits);
  let decoded;
  try {
    decoded = decodeProfile(bytes, limits);
  } catch (err) {
    assert.ok(err instanceof ProfileError, `only ProfileError, got ${String(err)}`);
    if (!(scanned instanceof ProfileError)) {
      // the decoder also holds the bytes to max_decompressed_size, which the scan is not given
      assert.ok(err instanceof ProfileLimitError && err.limit === 'max_decompressed_size' && bytes.length > limits.max_decompressed_size, `the scan accepted what the decoder refused: ${err.message}`);
    }
    return;
  }
  assert.ok(!(scanned instanceof ProfileError), `the decoder took what the scan refused: ${JSON.stringify(scanned)}`);
  const { profile, summary } = decoded;
  // the scan counts string bytes on the wire, which bound the decoded lengths (checked below)
  const counts = { ...profileCounts(profile), stringTableSize: summary.counts.stringTableSize };
  assert.deepEqual(summary.counts, counts);
  // invalid UTF-8 decodes to one U+FFFD per byte at most: a string is never longer than its bytes
  assert.ok(sum(profile.stringTable.strings.map((s) => s.length)) <= counts.stringTableSize);
  // what came through is within every limit
  assert.ok(counts.samples <= limits.max_samples && counts.frames <= limits.max_frames && counts.labels <= limits.max_labels);
  assert.ok(counts.locations <= limits.max_locations && counts.lines <= limits.max_lines && counts.functions <= limits.max_functions);
  assert.ok(counts.mappings <= limits.max_mappings && counts.strings <= limits.max_strings && counts.stringTableSize <= limits.max_string_table_size);
  assert.ok(counts.sampleTypes <= limits.max_sample_types && counts.comments <= limits.max_strings);
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v > 127n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

type Mutation = { kind: 'flip'; at: number; byte: number } | { kind: 'cut'; at: number } | { kind: 'insert'; at: number; value: bigint } | { kind: 'delete'; at: number; length: number } | { kind: 'repeat'; at: number; length: number; times: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.oneof(fc.bigInt(0n, 300n), fc.bigInt(0n, 2n ** 64n - 1n)) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 2, max: 50 }) }),
);

function mutate(base: Buffer, mutations: Mutation[]): Buffer {
  let b = base;
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case 'flip':
        b = Buffer.from(b);
        if (b.length > 0) b[at] = m.byte;
        break;
      case 'cut':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(varint(m.value)), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'repeat': {
        const chunk = b.subarray(at, at + m.length);
        b = Buffer.concat([b.subarray(0, at), ...Array.from({ length: m.times }, () => chunk), b.subarray(at + chunk.length)]);
        break;
      }
    }
  }
  return b;
}

const mutated = fc.tuple(fc.nat(FIXTURES.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([i, ms]) => mutate(FIXTURES[i] as Buffer, ms));

type Edit =
  | { kind: 'value'; sample: number; index: number; value: bigint }
  | { kind: 'location'; sample: number; id: number }
  | { kind: 'label'; sample: number; key: number; str: number; num: bigint }
  | { kind: 'time'; value: bigint }
  | { kind: 'copies'; sample: number; times: number }
  | { kind: 'line'; location: number; functionId: number; line: number }
  | { kind: 'address'; location: number; value: bigint };

const int64 = fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n);
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('value' as const), sample: fc.nat(), index: fc.nat(4), value: int64 }),
  fc.record({ kind: fc.constant('location' as const), sample: fc.nat(), id: fc.nat(1000) }),
  fc.record({ kind: fc.constant('label' as const), sample: fc.nat(), key: fc.nat(100), str: fc.nat(100), num: int64 }),
  fc.record({ kind: fc.constant('time' as const), value: int64 }),
  fc.record({ kind: fc.constant('copies' as const), sample: fc.nat(), times: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('line' as const), location: fc.nat(), functionId: fc.nat(1000), line: fc.nat(100_000) }),
  fc.record({ kind: fc.constant('address' as const), location: fc.nat(), value: fc.bigInt(0n, 2n ** 64n - 1n) }),
);

/** A real profile with its values, ids, labels, lines and times changed through pprof-format: valid protobuf, odd content. */
function edited(base: Buffer, edits: Edit[]): Buffer {
  const p = decodeProfile(base, DEFAULT_PROFILE_LIMITS).profile;
  for (const e of edits) {
    const sample = p.sample.length > 0 && 'sample' in e ? p.sample[e.sample % p.sample.length] : undefined;
    const location = p.location.length > 0 && 'location' in e ? p.location[e.location % p.location.length] : undefined;
    switch (e.kind) {
      case 'value':
        if (sample && sample.value.length > 0) sample.value[e.index % sample.value.length] = e.value;
        break;
      case 'location':
        if (sample) sample.locationId.push(e.id);
        break;
      case 'label':
        sample?.label.push(new Label({ key: e.key, str: e.str, num: e.num }));
        break;
      case 'time':
        p.timeNanos = e.value;
        break;
      case 'copies':
        if (sample) for (let i = 0; i < e.times; i++) p.sample.push(new Sample({ locationId: [...sample.locationId], value: [...sample.value], label: [...sample.label] }));
        break;
      case 'line':
        location?.line.push(new Line({ functionId: e.functionId, line: e.line }));
        break;
      case 'address':
        if (location) location.address = e.value;
        break;
    }
  }
  return Buffer.from(p.encode());
}

const editedProfiles = fc.tuple(fc.nat(FIXTURES.length - 1), fc.array(edit, { minLength: 1, maxLength: 6 })).map(([i, es]) => edited(FIXTURES[i] as Buffer, es));

/** Bytes that look like protobuf fields: keys of every field number and wire type, varints, nested lengths. */
const fieldish: fc.Arbitrary<Buffer> = fc.letrec<{ fields: Buffer }>((tie) => ({
  fields: fc
    .array(
      fc.oneof(
        { depthSize: 'small' },
        fc.tuple(fc.integer({ min: 0, max: 20 }), fc.bigInt(0n, 2n ** 64n - 1n)).map(([f, v]) => Buffer.from([...varint(BigInt(f << 3)), ...varint(v)])),
        fc.tuple(fc.integer({ min: 0, max: 20 }), tie('fields')).map(([f, inner]) => Buffer.from([...varint(BigInt((f << 3) | 2)), ...varint(BigInt(inner.length)), ...inner])),
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 12 })).map(([k, rest]) => Buffer.from([k, ...rest])),
      ),
      { maxLength: 8 },
    )
    .map((parts) => Buffer.concat(parts)),
})).fields;

/** A valid header (string table, a sample type) in front of fieldish bytes, so the scan gets past its last checks. */
const withHeader = fieldish.map((body) => Buffer.concat([Buffer.from([0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x32, 0x00, 0x32, 0x01, 0x61, 0x32, 0x01, 0x62]), body]));

const smallLimits: fc.Arbitrary<ProfileLimits> = fc.record({
  max_decompressed_size: fc.integer({ min: 1, max: 8192 }),
  max_samples: fc.integer({ min: 1, max: 40 }),
  max_sample_types: fc.integer({ min: 1, max: 8 }),
  max_frames: fc.integer({ min: 1, max: 200 }),
  max_labels: fc.integer({ min: 1, max: 40 }),
  max_locations: fc.integer({ min: 1, max: 100 }),
  max_lines: fc.integer({ min: 1, max: 100 }),
  max_functions: fc.integer({ min: 1, max: 100 }),
  max_mappings: fc.integer({ min: 1, max: 4 }),
  max_strings: fc.integer({ min: 1, max: 100 }),
  max_string_table_size: fc.integer({ min: 1, max: 4096 }),
});

describe('profile scan and bounded decoder, fuzzed', () => {
  test('random bytes: a summary or a ProfileError, and the decoder agrees', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => checkAgreement(bytes)),
      fuzzParameters(3000),
    );
  });

  test('protobuf-shaped bytes: a summary or a ProfileError, and the decoder agrees', () => {
    fc.assert(
      fc.property(fc.oneof(fieldish, withHeader), (bytes) => checkAgreement(bytes)),
      fuzzParameters(3000),
    );
  });

  test('mutated real profiles (flips, cuts, inserted varints, deletions, repeats): the decoder decodes what the scan accepts, to its counts', () => {
    fc.assert(
      fc.property(mutated, (bytes) => checkAgreement(bytes)),
      fuzzParameters(3000),
    );
  });

  test('real profiles with odd values, ids, labels, lines and times: the decoder decodes what the scan accepts, to its counts', () => {
    fc.assert(
      fc.property(editedProfiles, (bytes) => checkAgreement(bytes)),
      fuzzParameters(2000),
    );
  });

  test('under any limits, nothing decoded holds more than they allow', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, editedProfiles, fc.constantFrom(...FIXTURES)), smallLimits, (bytes, limits) => {
        checkAgreement(bytes, limits);
        try {
          decodeProfile(bytes, limits);
        } catch (err) {
          if (err instanceof ProfileLimitError) assert.ok(err.count > limits[err.limit], `${err.limit}: ${err.count} is not past ${limits[err.limit]}`);
        }
      }),
      fuzzParameters(2000),
    );
  });

  test("what the scan accepts, the one-walk name reader (Pyroscope's names, Parca's profile type) reads as pprof-format decodes it", () => {
    fc.assert(
      fc.property(fc.oneof(mutated, editedProfiles), (bytes) => {
        let profile;
        try {
          profile = decodeProfile(bytes, DEFAULT_PROFILE_LIMITS).profile;
        } catch (err) {
          assert.ok(err instanceof ProfileError, `only ProfileError, got ${String(err)}`);
          return;
        }
        const names = readProfileNames(openProfile(bytes, DEFAULT_PROFILE_LIMITS).raw, true);
        assert.deepEqual(names.strings, profile.stringTable.strings);
        assert.deepEqual(names.typeIndexes, profile.sampleType.map((t) => Number(t.type)));
        // every type and unit string the decoder sees is one Parca's check reads (a field written twice, the decoder keeps the last; the reader reads both)
        const decoded = [...profile.sampleType, ...(profile.periodType ? [profile.periodType] : [])].flatMap((t) => [Number(t.type), Number(t.unit)]).filter((i) => i !== 0);
        const read = new Set(names.valueTypeIndexes);
        for (const i of decoded) assert.ok(read.has(i), `string ${i} of a sample or period type is read`);
        const labelled = profile.sample.map((x) => x.label.filter((l) => Number(l.str) > 0).flatMap((l) => [Number(l.key), Number(l.str)])).filter((pairs) => pairs.length > 0);
        assert.deepEqual(names.sampleLabels, labelled);
        // and the groups built from them never throw, whatever the indexes say
        sampleLabelGroups(names, new Set(['service_name']));
      }),
      fuzzParameters(2000),
    );
  });

  test('mutated gzip bodies: the decoder returns or throws a ProfileError', () => {
    const gz = FIXTURES.map((f) => gzipSync(f));
    fc.assert(
      fc.property(fc.nat(gz.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (i, ms) => {
        const bytes = mutate(gz[i] as Buffer, ms);
        try {
          decodeProfile(bytes, DEFAULT_PROFILE_LIMITS);
        } catch (err) {
          assert.ok(err instanceof ProfileError, `only ProfileError, got ${String(err)}`);
        }
      }),
      fuzzParameters(2000),
    );
  });

  test('the delta of a real profile and a later one with grown counters is their difference, stack by stack', () => {
    const cumulativeFixtures = [0, 1, 3, 4].map((i) => FIXTURES[i] as Buffer); // heap, allocs, block, mutex
    fc.assert(
      fc.property(fc.nat(cumulativeFixtures.length - 1), fc.array(fc.oneof(fc.constant(0), fc.nat(1_000_000)), { minLength: 1, maxLength: 32 }), fc.integer({ min: 1, max: 3_600_000 }), (i, grow, dtMs) => {
        const raw = cumulativeFixtures[i] as Buffer;
        const base = Profile.decode(raw);
        const cumulative = base.sampleType.flatMap((t, j) => (CUMULATIVE_SAMPLE_TYPES.has(base.stringTable.strings[Number(t.type)] ?? '') ? [j] : []));
        const later = Profile.decode(raw);
        later.sample.forEach((sample, j) => {
          for (const c of cumulative) sample.value[c] = Number(sample.value[c]) + (grow[j % grow.length] as number) * (c + 1);
        });
        later.timeNanos = BigInt(base.timeNanos) + BigInt(dtMs) * 1_000_000n;
        const store = new DeltaStore();
        assert.equal(store.compute('s', raw, 0).kind, 'baseline');
        const r = store.compute('s', Buffer.from(later.encode()), 0);
        assert.equal(r.kind, 'delta');
        if (r.kind !== 'delta') return;
        const got = valuesByStack(decodePprof(r.data));
        const before = valuesByStack(base);
        for (const [k, row] of valuesByStack(later)) {
          const want = row.map((v, j) => (cumulative.includes(j) ? v - (before.get(k)?.[j] ?? 0) : v));
          if (want.every((v) => v === 0)) assert.equal(got.has(k), false, k);
          else assert.deepEqual(got.get(k), want, k);
        }
        assert.equal(r.durationMs, dtMs);
      }),
      fuzzParameters(500),
    );
  });

  test('deltas of mutated profiles: a result or a ProfileError', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(mutated, editedProfiles), { minLength: 1, maxLength: 3 }), (profiles) => {
        const store = new DeltaStore();
        let t = 1;
        for (const p of profiles) {
          let result;
          try {
            result = store.compute('s', p, t++);
          } catch (err) {
            assert.ok(err instanceof ProfileError, `only ProfileError, got ${String(err)}`);
            continue;
          }
          // a delta is written from the profile's own bytes: it must be a profile the scan and pprof-format read alike
          if (result.kind === 'delta') {
            const decoded = decodeProfile(result.data, DEFAULT_PROFILE_LIMITS);
            assert.equal(decoded.profile.sample.length, result.sampleCount);
            checkAgreement(gunzipSync(result.data));
          }
        }
      }),
      fuzzParameters(1000),
    );
  });
});
