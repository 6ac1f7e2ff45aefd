import { promisify } from 'node:util';
import { gunzip as gunzipCb, gunzipSync, gzip as gzipCb } from 'node:zlib';
import { formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { ProfileFormatError, ProfileLimitError } from '../profiles/errors.js';
import { scanProfile } from '../profiles/scan.js';
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

/** A Go execution trace's header: `go 1.N trace` padded with NUL bytes to 16 bytes (Go 1.5 and later). */
export const TRACE_HEADER_SIZE = 16;

/**
 * The Go version a trace header names (5 for `go 1.5 trace`, 22 for `go 1.22
 * trace`), or undefined when `body` does not start with one. Go's readers
 * (internal/trace's parseHeader before Go 1.22, version.ReadHeader after)
 * take the same 16 bytes: `go 1.`, the minor version, ` trace`, then NULs.
 */
export function traceVersion(body: Uint8Array): number | undefined {
  if (body.length < TRACE_HEADER_SIZE) return undefined;
  const m = /^go 1\.([1-9][0-9]{0,2}) trace\0+$/.exec(Buffer.from(body.buffer, body.byteOffset, TRACE_HEADER_SIZE).toString('latin1'));
  const minor = m ? Number(m[1]) : undefined;
  return minor !== undefined && minor >= 5 ? minor : undefined;
}

/**
 * Checks that a body is a Go execution trace by its header, and returns it as
 * it is: a trace is neither gzip nor pprof, and nothing in it is decoded (its
 * size is bounded by max_profile_size as it is read). What else came back (a
 * pprof profile, an HTML or JSON page, half a header) is named.
 */
export function checkTraceBody(body: Buffer, contentType: string | undefined): Buffer {
  if (traceVersion(body) !== undefined) {
    if (body.length === TRACE_HEADER_SIZE) throw new BodyError('a Go execution trace header and nothing after it: the target closed the trace early', 'invalid');
    return body;
  }
  const prefix = 'go 1.';
  const head = body.subarray(0, Math.min(body.length, prefix.length)).toString('latin1');
  if (body.length < TRACE_HEADER_SIZE && head === prefix.slice(0, head.length) && body.length > 0) {
    throw new BodyError(`truncated Go execution trace (${body.length} bytes, shorter than its ${TRACE_HEADER_SIZE}-byte header): the target closed it early`, 'invalid');
  }
  const gzipped = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  const what = gzipped ? 'is gzip-compressed (a pprof profile?)' : describeBody(body, contentType);
  throw new BodyError(`body is not a Go execution trace (no "go 1.N trace" header): it ${what}; is the path right? (Go serves traces at /debug/pprof/trace)`, 'invalid');
}

/** "starts with "<!DOCTYPE html>" (Content-Type text/html)" — enough for an operator to see what answered. */
export function describeBody(raw: Buffer, contentType: string | undefined): string {
  const head = raw.subarray(0, 64).toString('latin1');
  const printable = head.replace(/[^\x20-\x7e]/g, '.') + (raw.length > 64 ? '…' : '');
  const type = contentType ? ` (Content-Type ${contentType})` : '';
  if (raw.length === 0) return `was empty${type}`;
  return `starts with ${JSON.stringify(printable)}${type}`;
}
