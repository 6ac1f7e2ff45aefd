import { crc32 } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import type { ScrapedProfile } from '../profiles/profile.js';

// On-disk layout of the delivery spool. A segment is an append-only file:
//
//   segment = "PPSEG1\n\0" record*
//   record  = magic u32 "PPR1" | body length u32 LE | crc32(body) u32 LE | body
//   body    = meta length u32 LE | meta (JSON, UTF-8) | profile bytes
//
// Every record carries its own checksum, so a reader tells a whole record from
// a torn or damaged one, and the magic lets it find the next whole record
// after damage. Records are addressed by their byte offset in the segment.

export const SEGMENT_MAGIC = Buffer.from('PPSEG1\n\0', 'latin1');
export const RECORD_MAGIC = 0x31525050; // "PPR1" read as u32 LE
export const RECORD_HEADER_BYTES = 12;
/** Above any profile the scraper accepts (max_profile_size is checked on the way in). */
export const MAX_RECORD_BYTES = 1024 ** 3;
/** Far above any meta the daemon writes (names, labels, a URL); a longer one is damage. */
export const MAX_META_BYTES = 1024 * 1024;

/** Everything of a scraped profile but its bytes, plus when it was queued. */
export interface RecordMeta extends Omit<ScrapedProfile, 'data'> {
  /** ms since the epoch: when the spool took it. */
  readonly enqueuedAt: number;
  /** Only these repositories take it (absent: every repository of its segment). */
  readonly to?: readonly string[];
}

export class RecordError extends Error {
  override readonly name = 'RecordError';
}

/** The record as the buffers one writev takes: header, meta, profile bytes. */
export function encodeRecord(profile: ScrapedProfile, enqueuedAt: number, to?: readonly string[]): Buffer[] {
  const { data, ...rest } = profile;
  const meta: RecordMeta = { ...rest, enqueuedAt, ...(to ? { to } : {}) };
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.allocUnsafe(RECORD_HEADER_BYTES + 4);
  head.writeUInt32LE(metaBytes.length, RECORD_HEADER_BYTES);
  let crc = crc32(head.subarray(RECORD_HEADER_BYTES));
  crc = crc32(metaBytes, crc);
  crc = crc32(data, crc);
  head.writeUInt32LE(RECORD_MAGIC, 0);
  head.writeUInt32LE(4 + metaBytes.length + data.length, 4);
  head.writeUInt32LE(crc, 8);
  return [head, metaBytes, data];
}

/** Total bytes of an encoded record. */
export function recordLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/** Reads a body's meta (without copying the profile bytes); RecordError when it is not one the daemon wrote. */
export function decodeMeta(body: Buffer): RecordMeta {
  if (body.length < 4) throw new RecordError(`record body of ${body.length} bytes is too short`);
  const metaLength = body.readUInt32LE(0);
  if (metaLength > MAX_META_BYTES) throw new RecordError(`meta length ${metaLength} is over ${MAX_META_BYTES} bytes`);
  if (4 + metaLength > body.length) throw new RecordError(`meta length ${metaLength} runs past the body (${body.length} bytes)`);
  let meta: unknown;
  try {
    meta = JSON.parse(body.subarray(4, 4 + metaLength).toString('utf8'));
  } catch (err) {
    throw new RecordError(`record meta is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const problem = metaProblem(meta);
  if (problem) throw new RecordError(`record meta ${problem}`);
  return meta as RecordMeta;
}

/** What makes a parsed meta unlike the ones encodeRecord writes, if anything. */
function metaProblem(meta: unknown): string | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return 'is not an object';
  const m = meta as Record<string, unknown>;
  for (const k of ['targetId', 'service', 'type', 'url']) if (typeof m[k] !== 'string') return `lacks ${k} (a string)`;
  for (const k of ['time', 'sampleCount', 'enqueuedAt']) if (typeof m[k] !== 'number' || !Number.isFinite(m[k])) return `lacks ${k} (a number)`;
  for (const k of ['durationMs', 'bodyTime']) if (m[k] !== undefined && (typeof m[k] !== 'number' || !Number.isFinite(m[k]))) return `has a ${k} that is not a number`;
  if (m['delta'] !== undefined && typeof m['delta'] !== 'boolean') return 'has a delta that is not true or false';
  const labels = m['labels'];
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || !Object.values(labels).every((v) => typeof v === 'string')) return 'lacks labels (names to strings)';
  const to = m['to'];
  if (to !== undefined && (!Array.isArray(to) || !to.every((t) => typeof t === 'string'))) return 'has a `to` that is not a list of repository names';
  return undefined;
}

/** The profile a record holds. The bytes are a view into `body`. */
export function decodeProfile(body: Buffer): { meta: RecordMeta; profile: ScrapedProfile } {
  const meta = decodeMeta(body);
  const data = body.subarray(4 + body.readUInt32LE(0));
  const { enqueuedAt: _at, to: _to, ...fields } = meta;
  return { meta, profile: { ...fields, data } };
}

/**
 * Reads the record at `offset` of an open segment and checks it whole.
 * Throws RecordError when it is not (damaged since it was written).
 */
export async function readRecord(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  if (!Number.isSafeInteger(length) || length < RECORD_HEADER_BYTES + 4 || length > RECORD_HEADER_BYTES + MAX_RECORD_BYTES) {
    throw new RecordError(`record at ${offset}: implausible length ${length}`);
  }
  const buf = Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw new RecordError(`record at ${offset}: read ${bytesRead} of ${length} bytes (file shorter than expected)`);
  const body = checkRecord(buf, 0, length);
  if (typeof body === 'string') throw new RecordError(`record at ${offset}: ${body}`);
  return body;
}

/** The body of the record at `pos` if it is whole, else why not. */
function checkRecord(buf: Buffer, pos: number, end: number): Buffer | string {
  if (end - pos < RECORD_HEADER_BYTES) return 'truncated header';
  if (buf.readUInt32LE(pos) !== RECORD_MAGIC) return 'bad record magic';
  const length = buf.readUInt32LE(pos + 4);
  if (length < 4 || length > MAX_RECORD_BYTES) return `implausible length ${length}`;
  if (pos + RECORD_HEADER_BYTES + length > end) return 'truncated body';
  const body = buf.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + length);
  if (crc32(body) !== buf.readUInt32LE(pos + 8)) return 'checksum mismatch';
  return body;
}

/** What a segment scan found, in file order. */
export type ScanEvent =
  | { readonly kind: 'record'; readonly offset: number; readonly length: number; readonly meta: RecordMeta }
  /** Bytes that are not a whole record. `tail`: an incomplete record at the very end (a write cut short). */
  | { readonly kind: 'damage'; readonly offset: number; readonly length: number; readonly reason: string; readonly tail: boolean };

const CHUNK = 1024 * 1024;

/**
 * Reads a segment through one window of about CHUNK bytes: a view it hands
 * out stays valid (a refill takes a new buffer), and no length read from the
 * file sizes a buffer beyond CHUNK or the bytes the file has.
 */
class Window {
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  constructor(
    readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** Bytes [pos, pos + n) as far as the file has them; n is at most CHUNK + 4 + MAX_META_BYTES. */
  async get(pos: number, n: number): Promise<Buffer> {
    const end = Math.min(pos + n, this.size);
    if (pos >= this.#start && end <= this.#start + this.#buf.length) return this.#buf.subarray(pos - this.#start, end - this.#start);
    const want = Math.min(Math.max(n, CHUNK), this.size - pos);
    const next = Buffer.allocUnsafe(Math.max(0, want));
    const { bytesRead } = await this.fh.read(next, 0, next.length, pos);
    this.#buf = next.subarray(0, bytesRead);
    this.#start = pos;
    return this.#buf.subarray(0, Math.min(bytesRead, end - pos));
  }
}

type Found =
  | { readonly whole: true; readonly length: number; readonly meta: RecordMeta | string }
  | { readonly whole: false; readonly problem: string; readonly checked: number };

/**
 * Checks the record that may start at `pos`. A body larger than the window
 * is checksummed piece by piece, so a damaged length field (or a file made
 * to look like records) never makes the reader hold more than a window.
 */
async function recordAt(w: Window, pos: number): Promise<Found> {
  const head = await w.get(pos, RECORD_HEADER_BYTES);
  if (head.length < RECORD_HEADER_BYTES) return { whole: false, problem: 'truncated header', checked: 0 };
  if (head.readUInt32LE(0) !== RECORD_MAGIC) return { whole: false, problem: 'bad record magic', checked: 0 };
  const length = head.readUInt32LE(4);
  const crc = head.readUInt32LE(8);
  if (length < 4 || length > MAX_RECORD_BYTES) return { whole: false, problem: `implausible length ${length}`, checked: 0 };
  const start = pos + RECORD_HEADER_BYTES;
  if (start + length > w.size) return { whole: false, problem: 'truncated body', checked: 0 };
  let sum = 0;
  // the first piece holds the meta (unless it is near MAX_META_BYTES); a view of it outlives refills
  let first: Buffer | undefined;
  for (let at = 0; at < length; ) {
    const piece = await w.get(start + at, Math.min(CHUNK, length - at));
    if (piece.length === 0) return { whole: false, problem: 'truncated body', checked: at };
    first ??= piece;
    sum = crc32(piece, sum);
    at += piece.length;
  }
  if (sum !== crc || !first) return { whole: false, problem: 'checksum mismatch', checked: length };
  let meta: RecordMeta | string;
  try {
    const metaLength = first.readUInt32LE(0);
    if (metaLength > MAX_META_BYTES) throw new RecordError(`meta length ${metaLength} is over ${MAX_META_BYTES} bytes`);
    meta = decodeMeta(4 + metaLength <= first.length ? first : await w.get(start, Math.min(length, 4 + metaLength)));
  } catch (err) {
    meta = (err as Error).message;
  }
  return { whole: true, length: RECORD_HEADER_BYTES + length, meta };
}

/**
 * Walks a segment file: each whole record, and each stretch of bytes that is
 * not one (with where the next whole record starts). Holds about one window
 * of the file at a time, so a large backlog never sits in memory at once.
 */
export async function scanSegment(fh: FileHandle, size: number, onEvent: (e: ScanEvent) => void | Promise<void>): Promise<void> {
  const head = Buffer.alloc(SEGMENT_MAGIC.length);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  if (size < SEGMENT_MAGIC.length || bytesRead < head.length || !head.equals(SEGMENT_MAGIC)) throw new RecordError('not a spool segment (bad file header)');
  const w = new Window(fh, size);
  // Checking a false record start costs the length it claims. Damage can hold
  // one every few bytes, each claiming the rest of the file: without a bound
  // a start would read the segment once per false start (hours for 16 MiB).
  const budget = { left: 2 * size + 4 * CHUNK };
  let pos = SEGMENT_MAGIC.length;
  while (pos < size) {
    const found = await recordAt(w, pos);
    if (found.whole) {
      if (typeof found.meta === 'string') await onEvent({ kind: 'damage', offset: pos, length: found.length, reason: `unreadable meta: ${found.meta}`, tail: false });
      else await onEvent({ kind: 'record', offset: pos, length: found.length, meta: found.meta });
      pos += found.length;
      continue;
    }
    budget.left -= found.checked;
    const next = await findNextRecord(w, pos + 1, budget);
    const tail = next === size && (found.problem === 'truncated body' || found.problem === 'truncated header');
    await onEvent({ kind: 'damage', offset: pos, length: next - pos, reason: found.problem, tail });
    pos = next;
  }
}

/**
 * Offset of the next whole record at or after `from`, or the end of the file
 * when there is none, or when checking false starts has used up the budget
 * (then the rest of the segment counts as damaged).
 */
async function findNextRecord(w: Window, from: number, budget: { left: number }): Promise<number> {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  const size = w.size;
  let at = from;
  while (at < size && budget.left > 0) {
    const len = Math.min(CHUNK, size - at);
    const chunk = Buffer.allocUnsafe(len);
    const { bytesRead } = await w.fh.read(chunk, 0, len, at);
    const seen = chunk.subarray(0, bytesRead);
    for (let i = seen.indexOf(magic); i >= 0; i = seen.indexOf(magic, i + 1)) {
      const found = await recordAt(w, at + i);
      if (found.whole) return at + i;
      budget.left -= found.checked;
      if (budget.left <= 0) return size;
    }
    if (bytesRead < len || bytesRead < 4) break;
    // overlap by 3 bytes so a magic split across chunks is found
    at += bytesRead - 3;
  }
  return size;
}
