import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { ProfileLimits } from '../config/index.js';
import { formatSize } from '../config/index.js';
import { ProfileFormatError, ProfileLimitError } from './errors.js';
import { scanProfile } from './scan.js';
import type { ProfileSummary } from './scan.js';

// The one way to read what a profile holds. Whatever reads one (a fresh
// scrape, or a queued one read back after a crash, which nothing has vouched
// for since) inflates it within max_decompressed_size and scans it against
// the structure limits first, so a few KiB that claim millions of samples
// cost a scan, not a GiB of objects. Then it either walks the bytes
// (openProfile) or gets pprof-format's objects (decodeProfile).

export interface DecodedProfile {
  readonly profile: Profile;
  readonly summary: ProfileSummary;
}

function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** The protobuf of a profile, gzipped or not, inflated within `limits.max_decompressed_size`. */
export function inflateProfile(data: Uint8Array, limits: ProfileLimits): Buffer {
  const max = limits.max_decompressed_size;
  if (!isGzip(data)) {
    if (data.length > max) {
      throw new ProfileLimitError('max_decompressed_size', data.length, max, `profile is ${formatSize(data.length)} of protobuf, more than scrape.max_decompressed_size (${formatSize(max)}): refused (raise the limit if it is real)`);
    }
    return Buffer.from(data.buffer, data.byteOffset, data.length);
  }
  try {
    return gunzipSync(data, { maxOutputLength: max });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new ProfileLimitError('max_decompressed_size', max + 1, max, `gzip profile decompresses to more than scrape.max_decompressed_size (${formatSize(max)}): refused (a gzip bomb, or raise the limit)`);
    }
    if (code === 'Z_BUF_ERROR') throw new ProfileFormatError(`truncated gzip (${data.length} bytes)`, { cause: err });
    throw new ProfileFormatError(`gzip does not decompress: ${(err as Error).message}`, { cause: err });
  }
}

/** A profile's protobuf that has passed the limits, for a reader that walks it where it lies. */
export interface OpenedProfile {
  readonly raw: Buffer;
  readonly summary: ProfileSummary;
}

/**
 * Inflates a pprof profile (gzipped or raw protobuf) and scans it against
 * the limits. Throws ProfileLimitError or ProfileFormatError (both
 * ProfileError), nothing else.
 */
export function openProfile(data: Uint8Array, limits: ProfileLimits): OpenedProfile {
  const raw = inflateProfile(data, limits);
  return { raw, summary: scanProfile(raw, limits) };
}

/**
 * pprof-format's objects of a profile that has passed the limits (still
 * several hundred bytes an entry: readers of large profiles walk the opened
 * bytes instead). Throws a ProfileError, nothing else.
 */
export function decodeProfile(data: Uint8Array, limits: ProfileLimits): DecodedProfile {
  const { raw, summary } = openProfile(data, limits);
  try {
    return { profile: Profile.decode(raw), summary };
  } catch (err) {
    // the scan holds input to what pprof-format reads; this is a disagreement between the two
    throw new ProfileFormatError(`pprof-format cannot decode a profile the scan accepted: ${(err as Error).message}`, { cause: err });
  }
}
