import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { LineLimiter } from '../log-limiter.js';
import { LruMap } from '../lru.js';
import { deltaOf } from '../profiles/delta.js';
import type { Baseline, DeltaResult, Deltas } from '../profiles/delta.js';

// The delta stage's baselines on disk: one file per series under
// state_dir/baselines/<repository>/, read when the series' next profile is
// prepared and replaced after it, so memory does not grow with targets and a
// restart keeps them. Nothing on disk is trusted: a file that is missing,
// short, damaged, too large or for another series is no baseline (the
// profile only sets one, as a first scrape), never a crash.
//
//   file = magic "PPBASE1\n" | crc32(rest) u32 | series length u32 |
//          signature length u32 | keys u32 | width u32 | timeNs i64 |
//          series | signature | keys f64 × keys | values f64 × keys × width
//   (little-endian; the name is a hash of the series, which the file repeats)
//
// Written over the old file in place (the new bytes from offset 0, then cut
// to their length), never synced. Not to a temporary file renamed over it:
// ext4 flushes a file renamed over another at the rename (auto_da_alloc),
// which cost 0.5 ms a profile on a quiet disk and blocked the delta stage
// behind every other writer on a busy one; in place it is 20 µs. A crash
// of the process (kill -9, OOM) between the write and the cut, or a power
// cut, may leave a damaged file: its checksum says so, and the series' next
// profile sets the baseline again (one interval of deltas lost).

/** The folder of one repository's baselines. */
export function baselinesDir(stateDir: string, repository: string): string {
  return join(stateDir, 'baselines', repository);
}

const MAGIC = Buffer.from('PPBASE1\n', 'latin1');
const HEADER_BYTES = MAGIC.length + 4 + 4 * 4 + 8;
const SUFFIX = '.baseline';
const NAME_RE = /^[0-9a-f]{32}\.baseline(\.tmp)?$/;
const MAX_NAMES_BYTES = 64 * 1024;
const MAX_WIDTH = 64;
const SIGNATURE_RE = /^[0-9]{1,3}:[a-z_]{1,64}$/;

/** The file of a series: a hash, so any target id or type name makes a safe name. */
export function baselineFileOf(series: string): string {
  return `${createHash('sha256').update(series).digest('hex').slice(0, 32)}${SUFFIX}`;
}

/** The largest baseline a profile within `limits` can make: a larger file is refused unread. */
export function maxBaselineBytes(limits: ProfileLimits): number {
  return HEADER_BYTES + MAX_NAMES_BYTES + 8 * limits.max_samples * (1 + Math.min(limits.max_sample_types, MAX_WIDTH));
}

export function encodeBaseline(series: string, b: Baseline): Buffer {
  const seriesBytes = Buffer.from(series, 'utf8');
  const sigBytes = Buffer.from(b.signature, 'latin1');
  const count = b.keys.length;
  const width = b.signature.split(',').length;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + seriesBytes.length + sigBytes.length + 8 * (count + b.values.length));
  MAGIC.copy(buf, 0);
  let at = MAGIC.length + 4;
  at = buf.writeUInt32LE(seriesBytes.length, at);
  at = buf.writeUInt32LE(sigBytes.length, at);
  at = buf.writeUInt32LE(count, at);
  at = buf.writeUInt32LE(width, at);
  at = buf.writeBigInt64LE(b.timeNs, at);
  at += seriesBytes.copy(buf, at);
  at += sigBytes.copy(buf, at);
  for (let i = 0; i < count; i++) at = buf.writeDoubleLE(b.keys[i] as number, at);
  for (let i = 0; i < b.values.length; i++) at = buf.writeDoubleLE(b.values[i] as number, at);
  buf.writeUInt32LE(crc32(buf.subarray(MAGIC.length + 4)), MAGIC.length);
  return buf;
}

/** The baseline a file holds for `series`, or why it holds none. */
export function decodeBaseline(buf: Buffer, series: string): Baseline | string {
  if (buf.length < HEADER_BYTES) return `${buf.length} bytes, shorter than a header`;
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a baseline file';
  if (crc32(buf.subarray(MAGIC.length + 4)) !== buf.readUInt32LE(MAGIC.length)) return 'checksum mismatch';
  let at = MAGIC.length + 4;
  const seriesLength = buf.readUInt32LE(at);
  const sigLength = buf.readUInt32LE((at += 4));
  const count = buf.readUInt32LE((at += 4));
  const width = buf.readUInt32LE((at += 4));
  const timeNs = buf.readBigInt64LE((at += 4));
  at += 8;
  if (seriesLength + sigLength > MAX_NAMES_BYTES || width < 1 || width > MAX_WIDTH) return 'header out of bounds';
  if (buf.length !== HEADER_BYTES + seriesLength + sigLength + 8 * count * (1 + width)) return 'length does not match its header';
  if (buf.toString('utf8', at, (at += seriesLength)) !== series) return 'holds another series';
  const signature = buf.toString('latin1', at, (at += sigLength));
  const parts = signature.split(',');
  if (parts.length !== width || !parts.every((p) => SIGNATURE_RE.test(p))) return 'bad sample types';
  const keys = new Float64Array(count);
  for (let i = 0; i < count; i++, at += 8) {
    const k = buf.readDoubleLE(at);
    // sorted and distinct: deltas look keys up by bisection
    if (!Number.isFinite(k) || (i > 0 && k <= (keys[i - 1] as number))) return 'keys not sorted';
    keys[i] = k;
  }
  const values = new Float64Array(count * width);
  for (let i = 0; i < values.length; i++, at += 8) {
    const v = buf.readDoubleLE(at);
    if (!Number.isFinite(v)) return 'a value is not a number';
    values[i] = v;
  }
  return { keys, values, signature, timeNs };
}

export interface BaselineFilesOptions {
  /** The repository, for the log. */
  readonly repository: string;
  readonly logger?: Logger | undefined;
  /** A baseline not written for this long is removed by the next sweep (its target is gone). */
  readonly idleMs: number;
  /** How often a compute() starts a sweep, the first one starting with the first compute() (default 1 h). */
  readonly sweepEveryMs?: number;
  /** Memory for baselines that could not be written to disk (default 256 MiB). */
  readonly fallbackBytes?: number;
}

const ONE_HOUR_MS = 3_600_000;

/**
 * A delta stage's baselines (Deltas), one file per series in `dir`. One
 * operation at a time: compute() is called in queue order already, and the
 * sweep removes a file only between two of them. Memory holds no baseline
 * but the one being diffed, save those the disk refused (full, read-only):
 * they stay in a bounded map, the files left behind are never read, and only
 * those the map forgets count as evictions.
 */
export class BaselineFiles implements Deltas {
  readonly dir: string;
  readonly #options: BaselineFilesOptions;
  readonly #log: LineLimiter;
  readonly #fallback: LruMap<string, Baseline>;
  /** Series whose file holds an older baseline that could not be replaced nor removed. */
  readonly #stale = new Set<string>();
  #tail: Promise<unknown> = Promise.resolve();
  #files = 0;
  #made = false;
  #nextSweep = 0;
  evictions = 0;

  constructor(dir: string, options: BaselineFilesOptions) {
    this.dir = dir;
    this.#options = options;
    this.#fallback = new LruMap(options.fallbackBytes ?? 256 * 1024 ** 2, (b, series) => b.keys.byteLength + b.values.byteLength + series.length * 2 + 160);
    this.#log = new LineLimiter((folded) => options.logger?.warn({ repository: options.repository, dir, folded }, `${folded} more delta baseline files could not be read or written since the last line`));
  }

  /** Baseline files (known once the first sweep listed them), and those held in memory. */
  get size(): number {
    return this.#files + this.#fallback.size;
  }

  /** Memory held by baselines the disk refused. */
  get bytes(): number {
    return this.#fallback.bytes;
  }

  has(series: string): boolean {
    return this.#fallback.has(series) || (!this.#stale.has(series) && existsSync(join(this.dir, baselineFileOf(series))));
  }

  compute(series: string, data: Uint8Array, fallbackTimeMs: number, now = Date.now(), limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): Promise<DeltaResult> {
    if (now >= this.#nextSweep) {
      this.#nextSweep = now + (this.#options.sweepEveryMs ?? ONE_HOUR_MS);
      void this.sweep(now);
    }
    return this.#exclusive(async () => {
      const name = baselineFileOf(series);
      const held = this.#fallback.get(series);
      const read = held ? { baseline: held, exists: this.#stale.has(series) } : this.#stale.has(series) ? { baseline: undefined, exists: true } : this.#read(name, series, limits);
      const { result, baseline } = deltaOf(read.baseline, data, fallbackTimeMs, limits);
      if (baseline) this.#write(series, name, baseline, read.exists);
      return result;
    });
  }

  /**
   * Removes the baselines not written for `idleMs` and the temporary files a
   * crash left; counts the files. Resolves with how many baselines went;
   * never rejects.
   */
  async sweep(now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await this.#exclusive(async () => {
        const all = (await readdir(this.dir)).filter((n) => NAME_RE.test(n));
        // temporary files: what a crash left while an earlier version wrote through a rename
        for (const tmp of all.filter((n) => n.endsWith('.tmp'))) await unlink(join(this.dir, tmp)).catch(() => undefined);
        const files = all.filter((n) => !n.endsWith('.tmp'));
        this.#files = files.length;
        return files;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#warn(this.dir, 'could not list the delta baseline files: idle ones are not removed this time', err);
      return 0;
    }
    const cutoff = now - this.#options.idleMs;
    let removed = 0;
    for (const name of names) {
      const path = join(this.dir, name);
      if (!(await isOlder(path, cutoff))) continue;
      // checked again between two computes: a baseline written meanwhile stays
      const gone = await this.#exclusive(async () => (await isOlder(path, cutoff)) && (await unlink(path).then(() => true, () => false)));
      if (gone) {
        removed++;
        this.#files--;
      }
    }
    if (removed > 0) this.#options.logger?.info({ repository: this.#options.repository, dir: this.dir, removed, idle_ms: this.#options.idleMs }, 'removed delta baselines of series not seen for a while');
    return removed;
  }

  #exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(f);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  // Synchronous I/O: a baseline is a few KiB to a few MiB in the page cache, read and replaced in
  // microseconds; six trips through the thread pool per profile cost more than the delta itself.
  #read(name: string, series: string, limits: ProfileLimits): { baseline: Baseline | undefined; exists: boolean } {
    const path = join(this.dir, name);
    let buf: Buffer;
    try {
      const fd = openSync(path, 'r');
      try {
        const { size } = fstatSync(fd);
        const max = maxBaselineBytes(limits);
        if (size > max) {
          this.#warn(path, `a delta baseline file of ${size} bytes, larger than any profile within the scrape limits makes (${max}), is not read: the series' next profile only sets a baseline`);
          return { baseline: undefined, exists: true };
        }
        buf = Buffer.allocUnsafe(size);
        buf = buf.subarray(0, readSync(fd, buf, 0, size, 0));
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { baseline: undefined, exists: false };
      this.#warn(path, "could not read a delta baseline file: the series' next profile only sets a baseline", err);
      return { baseline: undefined, exists: true };
    }
    const baseline = decodeBaseline(buf, series);
    if (typeof baseline === 'string') {
      this.#warn(path, `a delta baseline file is unreadable (${baseline}): the series' next profile only sets a baseline`);
      return { baseline: undefined, exists: true };
    }
    return { baseline, exists: true };
  }

  #write(series: string, name: string, baseline: Baseline, existed: boolean): void {
    const path = join(this.dir, name);
    try {
      if (!this.#made) {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        this.#made = true;
      }
      writeInPlace(path, encodeBaseline(series, baseline));
      if (!existed) this.#files++;
      this.#fallback.delete(series);
      this.#stale.delete(series);
      return;
    } catch (err) {
      this.#warn(path, 'could not write a delta baseline file: the baseline is held in memory instead (within a bound)', err);
    }
    // the file left is an older baseline, or half of the new one: the next delta against it would count an interval twice
    try {
      unlinkSync(path);
      if (existed) this.#files--;
      this.#stale.delete(series);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#stale.add(series);
    }
    this.evictions += this.#fallback.set(series, baseline);
  }

  #warn(file: string, what: string, err?: unknown): void {
    const error = err === undefined ? undefined : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    this.#log.emit((folded) =>
      this.#options.logger?.warn(
        { repository: this.#options.repository, file, ...(error !== undefined ? { error } : {}), ...(folded ? { also_failed: folded } : {}) },
        what,
      ),
    );
  }
}

/** The file's bytes become `data`: written from offset 0 over what was there, then cut to its length. */
function writeInPlace(path: string, data: Buffer): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at, at);
    ftruncateSync(fd, data.length);
  } finally {
    closeSync(fd);
  }
}

async function isOlder(path: string, cutoff: number): Promise<boolean> {
  try {
    return (await stat(path)).mtimeMs < cutoff;
  } catch {
    return false;
  }
}
