// Reading and writing protobuf fields. scanProfile reads with a Cursor to
// check a profile; the readers that walk it again once it was accepted read
// with one too, and meet no error there.

/** The longest varint protobuf writes: 64 bits, 7 to a byte. */
export const MAX_VARINT_BYTES = 10;

/** A varint that runs past the end of its message, or past 10 bytes. */
export class VarintError extends Error {
  override readonly name = 'VarintError';
  constructor(
    readonly kind: 'truncated' | 'too_long',
    /** The position the reader stopped at. */
    readonly at: number,
  ) {
    super(kind === 'truncated' ? `truncated: a number runs past the end at byte ${at}` : `not a protobuf: a number longer than ${MAX_VARINT_BYTES} bytes at byte ${at}`);
  }
}

/**
 * A position in a protobuf buffer, and the 64-bit halves of the last number
 * read by `varint64`. Every varint read ends before `end` (the buffer's end
 * unless given) within 10 bytes, or throws a VarintError.
 */
export class Cursor {
  pos: number;
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }

  /** Skips a length-delimited value. */
  skipLength(): void {
    const len = this.varint();
    this.pos += len;
  }

  /** A varint as a number: exact below 2^53. */
  varint(end = this.buf.length): number {
    const buf = this.buf;
    let pos = this.pos;
    // most are one byte: this path keeps the check as fast as an unchecked read
    if (pos >= end) return this.#fail('truncated', pos);
    const first = buf[pos++] as number;
    if (first < 0x80) {
      this.pos = pos;
      return first;
    }
    let value = first & 0x7f;
    let scale = 128;
    for (let i = 1; i < MAX_VARINT_BYTES; i++) {
      if (pos >= end) return this.#fail('truncated', pos);
      const b = buf[pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    return this.#fail('too_long', pos);
  }

  /** A varint into `lo` and `hi` (its low and high 32 bits), exactly. */
  varint64(end = this.buf.length): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift >= MAX_VARINT_BYTES * 7) this.#fail('too_long', pos);
      if (pos >= end) this.#fail('truncated', pos);
      const b = buf[pos++] as number;
      const bits = b & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (shift - 32);
      if (b < 0x80) break;
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint read as an int64 (two's complement), as a number. */
  int64(): number {
    // most values fit in 7 bytes (below 2^49): no 64-bit arithmetic for them
    const buf = this.buf;
    let pos = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = buf[pos++];
      if (b === undefined) break;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 128;
    }
    this.varint64();
    return this.hi >= 0x80000000 ? -((~this.hi >>> 0) * 4294967296 + (~this.lo >>> 0) + 1) : this.hi * 4294967296 + this.lo;
  }

  /** A varint read as an int64, exactly. */
  bigint(): bigint {
    this.varint64();
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  /** A varint as an unsigned bigint, exactly: a tenth byte's bits past 64 too, as pprof-format reads them. */
  unsigned(end = this.buf.length): bigint {
    const start = this.pos;
    this.varint64(end);
    const low = (BigInt(this.hi) << 32n) | BigInt(this.lo);
    return this.pos - start < MAX_VARINT_BYTES ? low : low | (BigInt((this.buf[this.pos - 1] as number) >> 1) << 64n);
  }

  /** Thrown out of line, so the readers stay small enough to inline. */
  #fail(kind: VarintError['kind'], at: number): never {
    this.pos = at;
    throw new VarintError(kind, at);
  }
}

/** Bytes of `n` as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of `v` as an int64 varint (negative numbers take ten). */
export function int64Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

/** Writes `n` (0 ≤ n < 2^53) as a varint at `pos`; returns the position after it. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 128) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** Writes `v` as an int64 varint (two's complement when negative); returns the position after it. */
export function writeInt64(out: Uint8Array, pos: number, v: number): number {
  return v >= 0 ? writeVarint(out, pos, v) : writeUint64Big(out, pos, BigInt(v));
}

/** Bytes of `v` as a uint64 varint (a negative int64 as its two's complement). */
export function uint64BigSize(v: bigint): number {
  let x = BigInt.asUintN(64, v);
  let size = 1;
  while (x >= 128n) {
    x >>= 7n;
    size++;
  }
  return size;
}

/** Writes `v` as a uint64 varint (a negative int64 as its two's complement); returns the position after it. */
export function writeUint64Big(out: Uint8Array, pos: number, v: bigint): number {
  let x = BigInt.asUintN(64, v);
  while (x >= 128n) {
    out[pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  out[pos++] = Number(x);
  return pos;
}

/**
 * Calls `each(key, from, to)` for every length-delimited field of the message
 * between `start` and `end`, stepping over varint fields. For bytes the scan
 * has accepted: keys of one byte, and only varints and lengths.
 */
export function eachLengthField(buf: Buffer, start: number, end: number, each: (key: number, from: number, to: number) => void): void {
  const c = new Cursor(buf, start);
  while (c.pos < end) {
    const key = buf[c.pos++] as number;
    if ((key & 7) === 0) {
      c.varint(end);
      continue;
    }
    const len = c.varint(end);
    const from = c.pos;
    c.pos += len;
    each(key, from, c.pos);
  }
}
