import { varintSize, writeVarint } from '../../src/profiles/wire.js';

// Whole protobuf fields, for test messages built in one piece (hand-made
// profiles, sample bombs): what the daemon writes goes through its encoders.

/** `n` (a whole number, 0 or more) as varint bytes. */
export function varintBytes(n: number): Buffer {
  const out = Buffer.alloc(varintSize(n));
  writeVarint(out, 0, n);
  return out;
}

/** A length-delimited field (wire type 2): its key, the length of `payload`, then `payload`. */
export function lenField(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([varintBytes((field << 3) | 2), varintBytes(payload.length), payload]);
}

/** A varint field (wire type 0). */
export function varintField(field: number, value: number): Buffer {
  return Buffer.concat([varintBytes(field << 3), varintBytes(value)]);
}
