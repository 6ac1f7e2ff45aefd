import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { DEFAULT_PROFILE_LIMITS } from '../../src/config/index.js';
import type { ProfileLimits } from '../../src/config/index.js';
import { ProfileFormatError, ProfileLimitError } from '../../src/profiles/errors.js';
import { scanProfile } from '../../src/profiles/scan.js';
import { BodyError, checkProfileBody } from '../../src/scrape/body.js';
import { profileCounts } from '../helpers/pprof-stacks.js';
import { fixture } from '../helpers/profiles.js';
import { bombProfile, sampleBomb } from '../helpers/sample-bomb.js';
import type { BombShape } from '../helpers/sample-bomb.js';

const FIXTURES = ['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'cpu', 'allocs-10k'];
const raw = (name: string): Buffer => gunzipSync(fixture(name));

function refusedBy(limit: keyof ProfileLimits, message: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof ProfileLimitError, String(err));
    assert.equal(err.limit, limit);
    assert.match(err.message, message);
    return true;
  };
}

describe('profile scan: structure limits', () => {
  for (const name of FIXTURES) {
    test(`a real Go ${name} profile passes the default limits, with the counts pprof-format decodes`, () => {
      const bytes = raw(name);
      const { counts } = scanProfile(bytes, DEFAULT_PROFILE_LIMITS);
      assert.deepEqual(counts, profileCounts(Profile.decode(bytes)));
    });
  }

  test('a sample bomb (3,000,000 samples in a gzip of tens of KiB) is a failed scrape that names max_samples', async () => {
    const bomb = sampleBomb();
    assert.ok(bomb.length < 100_000, `${bomb.length} bytes`);
    await assert.rejects(checkProfileBody(bomb, DEFAULT_PROFILE_LIMITS, 'application/octet-stream'), (err: unknown) => {
      assert.ok(err instanceof BodyError, String(err));
      assert.equal(err.kind, 'too_large');
      assert.equal(err.message, 'profile has 3000000 samples, more than scrape.max_samples (1000000): refused (a sample bomb, or raise the limit)');
      return true;
    });
  });

  // [limit, how many the profile holds, the profile, the reason with the limit one below that]
  const cases: [keyof ProfileLimits, number, BombShape, RegExp][] = [
    ['max_samples', 11, { samples: 11 }, /^profile has 11 samples, more than scrape\.max_samples \(10\): refused \(a sample bomb, or raise the limit\)$/],
    ['max_sample_types', 5, { sampleTypes: 5 }, /^profile has 5 sample types, more than scrape\.max_sample_types \(4\): refused \(a profile bomb, or raise the limit\)$/],
    ['max_frames', 12, { samples: 3, stackDepth: 4 }, /^profile has 12 frames \(location ids in samples\), more than scrape\.max_frames \(11\)/],
    ['max_labels', 12, { samples: 2, labelsPerSample: 6 }, /^profile has 12 labels in samples, more than scrape\.max_labels \(11\)/],
    ['max_locations', 11, { locations: 11 }, /^profile has 11 locations, more than scrape\.max_locations \(10\)/],
    ['max_lines', 12, { locations: 2, linesPerLocation: 6 }, /^profile has 12 lines in locations, more than scrape\.max_lines \(11\)/],
    ['max_functions', 11, { functions: 11 }, /^profile has 11 functions, more than scrape\.max_functions \(10\)/],
    ['max_mappings', 11, { mappings: 11 }, /^profile has 11 mappings, more than scrape\.max_mappings \(10\)/],
    ['max_strings', 13, { strings: 10 }, /^profile has 13 strings, more than scrape\.max_strings \(12\)/],
    ['max_strings', 21, { comments: 21 }, /^profile has 21 comments, more than scrape\.max_strings \(20\)/],
    ['max_string_table_size', 2060, { strings: 1, stringLength: 2048 }, /^profile has a string table of 2060B, more than scrape\.max_string_table_size \(2059B\)/],
  ];
  for (const [limit, count, shape, message] of cases) {
    test(`${limit}: one past the limit is refused, naming it; at the limit it passes (${JSON.stringify(shape)})`, () => {
      const bytes = bombProfile(shape);
      assert.throws(() => scanProfile(bytes, { ...DEFAULT_PROFILE_LIMITS, [limit]: count - 1 }), refusedBy(limit, message));
      assert.doesNotThrow(() => scanProfile(bytes, { ...DEFAULT_PROFILE_LIMITS, [limit]: count }));
    });
  }

  test('past the sample limit the rest are counted, not inspected: the count in the reason is exact', () => {
    const bytes = bombProfile({ samples: 50, stackDepth: 3 });
    assert.throws(() => scanProfile(bytes, { ...DEFAULT_PROFILE_LIMITS, max_samples: 5 }), refusedBy('max_samples', /^profile has 50 samples/));
  });
});

describe('profile scan: what pprof-format would read differently is refused', () => {
  // A key written in two bytes (0x92 0x00 is field 2, a sample, padded) is read
  // by pprof-format as one byte: field 18, an empty value, and then the length
  // of the "sample" as a field of its own. What follows, which a protobuf
  // reader takes as one sample's bytes, it decodes as thousands of samples.
  function hiddenSamples(wrappers: number, perWrapper: number): Buffer {
    const sampleBytes = Buffer.from([0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01]);
    const payload = Buffer.alloc(sampleBytes.length * perWrapper).fill(sampleBytes);
    const len = payload.length;
    assert.ok(len % 8 === 0 && len >= 128 && len < 16384);
    const wrapper = Buffer.concat([Buffer.from([0x92, 0x00, 0x80 | (len & 0x7f), len >> 7]), payload]);
    const header = bombProfile({ samples: 0 });
    return Buffer.concat([header, Buffer.alloc(wrapper.length * wrappers).fill(wrapper)]);
  }

  test('samples hidden behind a padded key', () => {
    const bytes = hiddenSamples(5, 2000);
    assert.equal(Profile.decode(bytes).sample.length, 10_000, 'pprof-format finds the hidden samples');
    assert.throws(() => scanProfile(bytes, { ...DEFAULT_PROFILE_LIMITS, max_samples: 100 }), (err: unknown) => {
      assert.ok(err instanceof ProfileFormatError, String(err));
      assert.match(err.message, /^not a pprof profile: a field key at byte \d+ is longer than one byte/);
      return true;
    });
  });

  const malformed: [string, Buffer, RegExp][] = [
    ['a field past 15 at the top level', Buffer.concat([bombProfile({}), Buffer.from([0x80, 0x01, 0x00])]), /a field key at byte \d+ is longer than one byte/],
    ['a fixed64 field (pprof-format knows no such wire type)', Buffer.concat([bombProfile({}), Buffer.from([0x39, 1, 2, 3, 4, 5, 6, 7, 8])]), /field 7 has wire type 1/],
    ['a fixed32 field inside a sample', Buffer.concat([bombProfile({ samples: 0 }), Buffer.from([0x12, 0x09, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01, 0x35, 0x00, 0x00])]), /in a sample, field 6 has wire type 5/],
    ['a label whose key is length-delimited', Buffer.concat([bombProfile({ samples: 0 }), Buffer.from([0x12, 0x0a, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01, 0x1a, 0x02, 0x0a, 0x00])]), /in a label, field 1 has wire type 2/],
    ['a packed field that ends inside a number', Buffer.concat([bombProfile({ samples: 0 }), Buffer.from([0x12, 0x06, 0x0a, 0x01, 0x81, 0x12, 0x01, 0x01])]), /truncated: a number runs past the end of a packed field/],
    ['a line that runs past its location', Buffer.concat([bombProfile({ locations: 0 }), Buffer.from([0x22, 0x04, 0x08, 0x01, 0x22, 0x05])]), /truncated: in a location, field 4 at byte \d+ needs 5 bytes, 0 left/],
  ];
  for (const [what, bytes, message] of malformed) {
    test(what, () => {
      assert.throws(() => scanProfile(bytes, DEFAULT_PROFILE_LIMITS), (err: unknown) => {
        assert.ok(err instanceof ProfileFormatError, String(err));
        assert.match(err.message, message);
        return true;
      });
    });
  }

  test('every sample has one value per sample type, as pprof requires', () => {
    // two sample types, but the second sample carries one value
    const header = bombProfile({ samples: 0, sampleTypes: 2 });
    const good = Buffer.from([0x12, 0x07, 0x0a, 0x01, 0x01, 0x12, 0x02, 0x01, 0x01]);
    const short = Buffer.from([0x12, 0x06, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01]);
    assert.doesNotThrow(() => scanProfile(Buffer.concat([header, good, good]), DEFAULT_PROFILE_LIMITS));
    assert.throws(() => scanProfile(Buffer.concat([header, good, short]), DEFAULT_PROFILE_LIMITS), /^ProfileFormatError: not a pprof profile: sample 1 has 1 values for 2 sample types$/);
    assert.throws(() => scanProfile(Buffer.concat([header, short, short]), DEFAULT_PROFILE_LIMITS), /^ProfileFormatError: not a pprof profile: sample 0 has 1 values for 2 sample types$/);
  });
});
