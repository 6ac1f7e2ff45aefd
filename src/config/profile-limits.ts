import { z } from 'zod';
import { size } from './fields.js';
import { describeValue } from './issues.js';

function structureLimit(key: string, fallback: number) {
  return z
    .number({ error: (iss) => `${key} must be a whole number, got ${describeValue(iss.input)}` })
    .int({ error: `${key} must be a whole number` })
    .min(1, { error: `${key} must be at least 1` })
    .default(fallback);
}

// What one profile may hold, counted in one pass over its bytes before
// anything decodes it. Each default is several times what the largest real Go
// profiles hold, and far below what a few KiB of gzip can claim (decoded into
// objects, a sample costs about 450 bytes, a string 230, a location 180, a
// label or a line 60, a frame 10).
export const profileLimitFields = {
  max_decompressed_size: size.default(256 * 1024 ** 2).meta({ description: 'A profile\'s size after gunzip: gzip bombs stop here.' }),
  max_samples: structureLimit('max_samples', 1_000_000).meta({ description: 'Samples a profile may hold. Past any of these structure limits a scrape fails, naming the limit.' }),
  max_sample_types: structureLimit('max_sample_types', 8).meta({ description: 'Sample types a profile may hold (Go writes up to 4).' }),
  max_frames: structureLimit('max_frames', 16_000_000).meta({ description: 'Location ids in all samples together (stack frames).' }),
  max_labels: structureLimit('max_labels', 4_000_000).meta({ description: 'Labels in all samples together.' }),
  max_locations: structureLimit('max_locations', 1_000_000).meta({ description: 'Locations a profile may hold.' }),
  max_lines: structureLimit('max_lines', 2_000_000).meta({ description: 'Lines in all locations together (inlined calls add lines).' }),
  max_functions: structureLimit('max_functions', 1_000_000).meta({ description: 'Functions a profile may hold.' }),
  max_mappings: structureLimit('max_mappings', 10_000).meta({ description: 'Mappings (binaries and libraries) a profile may hold.' }),
  max_strings: structureLimit('max_strings', 1_000_000).meta({ description: 'Entries of the string table.' }),
  max_string_table_size: size.default(64 * 1024 ** 2).meta({ description: 'Bytes of all strings of the string table together.' }),
};

/** The limits a profile is scanned and decoded under: the `scrape:` keys of the same names. */
export const profileLimitsSchema = z.strictObject(profileLimitFields);
export type ProfileLimits = z.output<typeof profileLimitsSchema>;
/** The limits where no config is at hand. */
export const DEFAULT_PROFILE_LIMITS: ProfileLimits = profileLimitsSchema.parse({});
