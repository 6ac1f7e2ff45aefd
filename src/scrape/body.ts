import { promisify } from 'node:util';
import { gunzip as gunzipCb, gunzipSync, gzip as gzipCb } from 'node:zlib';
import { formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { ProfileFormatError, ProfileLimitError, scanProfile } from '../profiles/scan.js';
import type { ProfileSummary } from '../profiles/scan.js';

const gunzip = promisify(gunzipCb);

// Below this, inflating on the main thread costs less than the hand-off to the
// thread pool and back; a typical Go profile is a few KiB to a few hundred.
const SYNC_GUNZIP_MAX = 512 * 1024;
const gzip = promisify(gzipCb);

export interface CheckedBody {
  /** gzip-compressed pprof: the bytes as received when they were gzip already. */
  readonly data: Buffer;
  readonly summary: ProfileSummary;
  readonly decompressedSize: number;
}

/** Why a 2xx body is not a profile; `what` is a short description of what came back. */
export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(
    message: string,
    readonly kind: 'invalid' | 'too_large',
  ) {
    super(message);
  }
}

/**
 * Checks that a body is a pprof profile (gzip or raw protobuf) within the
 * decompressed-size and structure limits, and returns it gzip-compressed.
 */
export async function checkProfileBody(body: Buffer, limits: ProfileLimits, contentType: string | undefined): Promise<CheckedBody> {
  const maxDecompressed = limits.max_decompressed_size;
  const gzipped = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  let raw: Buffer;
  if (gzipped) {
    try {
      raw = body.length <= SYNC_GUNZIP_MAX ? gunzipSync(body, { maxOutputLength: maxDecompressed }) : await gunzip(body, { maxOutputLength: maxDecompressed });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new BodyError(`gzip body decompresses to more than max_decompressed_size (${formatSize(maxDecompressed)}): refused (a gzip bomb, or raise the limit)`, 'too_large');
      }
      if (code === 'Z_BUF_ERROR') throw new BodyError(`truncated gzip body (${body.length} bytes): the target closed it early`, 'invalid');
      throw new BodyError(`gzip body does not decompress: ${(err as Error).message}`, 'invalid');
    }
  } else {
    if (body.length > maxDecompressed) throw new BodyError(`body is larger than max_decompressed_size (${formatSize(maxDecompressed)})`, 'too_large');
    raw = body;
  }
  let summary: ProfileSummary;
  try {
    summary = scanProfile(raw, limits);
  } catch (err) {
    if (err instanceof ProfileLimitError) throw new BodyError(err.message, 'too_large');
    if (err instanceof ProfileFormatError) {
      throw new BodyError(`${gzipped ? 'gzip body' : 'body'} is not a pprof profile (${err.message}); it ${describeBody(raw, contentType)}`, 'invalid');
    }
    throw err;
  }
  return { data: gzipped ? body : await gzip(raw), summary, decompressedSize: raw.length };
}

/** "starts with "<!DOCTYPE html>" (Content-Type text/html)" — enough for an operator to see what answered. */
export function describeBody(raw: Buffer, contentType: string | undefined): string {
  const head = raw.subarray(0, 64).toString('latin1');
  const printable = head.replace(/[^\x20-\x7e]/g, '.') + (raw.length > 64 ? '…' : '');
  const type = contentType ? ` (Content-Type ${contentType})` : '';
  if (raw.length === 0) return `was empty${type}`;
  return `starts with ${JSON.stringify(printable)}${type}`;
}
