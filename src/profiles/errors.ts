import { formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';

/** A profile the daemon does not decode: not pprof, damaged, or holding more than a limit allows. */
export class ProfileError extends Error {
  override readonly name: string = 'ProfileError';
}

/** Not a pprof profile, or a damaged one. */
export class ProfileFormatError extends ProfileError {
  override readonly name = 'ProfileFormatError';
}

/** A well-formed profile that holds more than one of the `scrape:` limits allows. */
export class ProfileLimitError extends ProfileError {
  override readonly name = 'ProfileLimitError';
  constructor(
    /** The config key of the limit, as in `scrape.<limit>`. */
    readonly limit: keyof ProfileLimits,
    readonly count: number,
    readonly max: number,
    message: string,
  ) {
    super(message);
  }
}

/** The limit error for `count` things over the `limit` key's value. */
export function limitError(limit: keyof ProfileLimits, count: number, max: number, what: string): ProfileLimitError {
  const isSize = limit === 'max_string_table_size' || limit === 'max_decompressed_size';
  const has = isSize ? `${what} of ${formatSize(count)}` : `${count} ${what}`;
  const bomb = limit === 'max_samples' ? 'a sample bomb' : 'a profile bomb';
  return new ProfileLimitError(limit, count, max, `profile has ${has}, more than scrape.${limit} (${isSize ? formatSize(max) : max}): refused (${bomb}, or raise the limit)`);
}
