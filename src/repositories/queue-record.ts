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

/** Reads a body's meta (without copying the profile bytes). */
export function decodeMeta(body: Buffer): RecordMeta {
  if (body.length < 4) throw new RecordError(`record body of ${body.length} bytes is too short`);
  const metaLength = body.readUInt32LE(0);
  if (4 + metaLength > body.length) throw new RecordError(`meta length ${metaLength} runs past the body (${body.length} bytes)`);
  const meta = JSON.parse(body.subarray(4, 4 + metaLength).toString('utf8')) as RecordMeta;
  if (typeof meta !== 'object' || meta === null || typeof meta.service !== 'string' || typeof meta.type !== 'string' || typeof meta.enqueuedAt !== 'number') {
    throw new RecordError('record meta lacks service, type or enqueuedAt');
  }
  return meta;
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
 * Walks a segment file: each whole record, and each stretch of bytes that is
 * not one (with where the next whole record starts). Reads in chunks, so a
 * large backlog never sits in memory at once.
 */
export async function scanSegment(fh: FileHandle, size: number, onEvent: (e: ScanEvent) => void | Promise<void>): Promise<void> {
  const head = Buffer.alloc(SEGMENT_MAGIC.length);
  await fh.read(head, 0, head.length, 0);
  if (size < SEGMENT_MAGIC.length || !head.equals(SEGMENT_MAGIC)) throw new RecordError('not a spool segment (bad file header)');
  let bufStart = SEGMENT_MAGIC.length;
  let buf: Buffer = Buffer.alloc(0);
  let pos = bufStart;
  // makes buf hold [pos, pos + n) when the file has it; returns how much it holds
  const ensure = async (n: number): Promise<number> => {
    if (pos - bufStart + n <= buf.length) return n;
    const keep = buf.subarray(pos - bufStart);
    const want = Math.min(Math.max(n, CHUNK), size - pos);
    if (want <= keep.length) {
      buf = keep;
      bufStart = pos;
      return keep.length;
    }
    const next = Buffer.allocUnsafe(want);
    keep.copy(next, 0);
    const { bytesRead } = await fh.read(next, keep.length, want - keep.length, pos + keep.length);
    buf = next.subarray(0, keep.length + bytesRead);
    bufStart = pos;
    return buf.length;
  };

  while (pos < size) {
    const have = await ensure(RECORD_HEADER_BYTES);
    let problem: string;
    if (have >= RECORD_HEADER_BYTES && buf.readUInt32LE(pos - bufStart) === RECORD_MAGIC) {
      const length = buf.readUInt32LE(pos - bufStart + 4);
      if (length >= 4 && length <= MAX_RECORD_BYTES && pos + RECORD_HEADER_BYTES + length <= size) {
        await ensure(RECORD_HEADER_BYTES + length);
        const checked = checkRecord(buf, pos - bufStart, buf.length);
        if (typeof checked !== 'string') {
          let meta: RecordMeta | undefined;
          let metaProblem = '';
          try {
            meta = decodeMeta(checked);
          } catch (err) {
            metaProblem = (err as Error).message;
          }
          if (meta) await onEvent({ kind: 'record', offset: pos, length: RECORD_HEADER_BYTES + length, meta });
          else await onEvent({ kind: 'damage', offset: pos, length: RECORD_HEADER_BYTES + length, reason: `unreadable meta: ${metaProblem}`, tail: false });
          pos += RECORD_HEADER_BYTES + length;
          continue;
        }
        problem = checked;
      } else if (pos + RECORD_HEADER_BYTES + length > size && length <= MAX_RECORD_BYTES) {
        problem = 'truncated body';
      } else {
        problem = `implausible length ${length}`;
      }
    } else {
      problem = have < RECORD_HEADER_BYTES ? 'truncated header' : 'bad record magic';
    }
    const next = await findNextRecord(fh, pos + 1, size);
    const tail = next === size && (problem === 'truncated body' || problem === 'truncated header');
    await onEvent({ kind: 'damage', offset: pos, length: next - pos, reason: problem, tail });
    pos = next;
    buf = Buffer.alloc(0);
    bufStart = pos;
  }
}

/** Offset of the next whole record at or after `from`, or `size` when there is none. */
async function findNextRecord(fh: FileHandle, from: number, size: number): Promise<number> {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  let at = from;
  while (at < size) {
    const len = Math.min(CHUNK, size - at);
    const chunk = Buffer.allocUnsafe(len);
    const { bytesRead } = await fh.read(chunk, 0, len, at);
    let i = chunk.subarray(0, bytesRead).indexOf(magic);
    while (i >= 0) {
      const candidate = at + i;
      const header = Buffer.alloc(RECORD_HEADER_BYTES);
      await fh.read(header, 0, RECORD_HEADER_BYTES, candidate);
      const length = header.readUInt32LE(4);
      if (length >= 4 && length <= MAX_RECORD_BYTES && candidate + RECORD_HEADER_BYTES + length <= size) {
        try {
          await readRecord(fh, candidate, RECORD_HEADER_BYTES + length);
          return candidate;
        } catch {
          // not a real record boundary: keep looking
        }
      }
      i = chunk.indexOf(magic, i + 1);
      if (i >= bytesRead) i = -1;
    }
    if (bytesRead < 4) break;
    // overlap by 3 bytes so a magic split across chunks is found
    at += bytesRead - 3;
    if (bytesRead < len) break;
  }
  return size;
}
