import { randomBytes } from 'node:crypto';
import { link, open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScrapedProfile } from '../profiles/profile.js';
import { segmentFile } from './ack-log.js';
import type { DurableQueue } from './queue.js';
import type { QueueDeps } from './settings.js';
import { encodeRecord, recordLength, SEGMENT_MAGIC } from './record.js';
import { syncDir } from './sync-dir.js';

export interface SpoolOptions {
  /** Bytes after which a new segment starts (default 16 MiB). */
  readonly segmentBytes?: number;
  /** Age after which a new segment starts, so an idle segment's space comes back (default 5 min). */
  readonly segmentAgeMs?: number;
  /**
   * How long a commit waits for more profiles before its fdatasync (default
   * 50 ms), unless `commitBatch` profiles are waiting sooner. Profiles that
   * arrive meanwhile share the one sync: at low rates the scrape path pays a
   * few ms of latency for far less CPU than a sync per profile; at high rates
   * batches fill before the window ends and nothing waits.
   */
  readonly commitWindowMs?: number;
  /** Profiles that end a commit window early (default 32). */
  readonly commitBatch?: number;
}

interface Segment {
  readonly id: string;
  readonly fh: FileHandle;
  readonly queues: readonly DurableQueue[];
  readonly createdAt: number;
  size: number;
  /** A write failed midway: what follows the last good record is unknown, so nothing more goes in. */
  broken: boolean;
}

interface Pending {
  readonly profile: ScrapedProfile;
  readonly buffers: Buffer[];
  readonly length: number;
  readonly at: number;
  readonly to: readonly string[] | undefined;
  readonly done: () => void;
}

const DEFAULT_SEGMENT_BYTES = 16 * 1024 ** 2;
const DEFAULT_SEGMENT_AGE_MS = 5 * 60_000;
const DEFAULT_COMMIT_WINDOW_MS = 50;
const DEFAULT_COMMIT_BATCH = 32;

/**
 * The spool's writing side: profiles appended as checksummed records to the
 * open segment and synced in groups (group commit), then pushed to the
 * queues of that segment. A segment is created, synced, linked into every
 * queue's folder and the folders synced before any profile goes into it; a
 * new one starts when it is full, old, broken, or the queues change.
 */
export class SpoolWriter {
  readonly #root: string;
  readonly #spoolDir: string;
  readonly #deps: QueueDeps;
  readonly #segmentBytes: number;
  readonly #segmentAgeMs: number;
  readonly #windowMs: number;
  readonly #batch: number;
  /** Ends the current commit window early. */
  #windowFull: (() => void) | undefined;
  #routes: DurableQueue[] = [];
  #routesChanged = true;
  #segment: Segment | undefined;
  #pending: Pending[] = [];
  #committing: Promise<void> | undefined;
  readonly #idleTimer: NodeJS.Timeout;
  #counter = 0;
  #diskFailing = false;
  readonly #runId = randomBytes(3).toString('hex');

  constructor(root: string, spoolDir: string, deps: QueueDeps, options: SpoolOptions) {
    this.#root = root;
    this.#spoolDir = spoolDir;
    this.#deps = deps;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#segmentAgeMs = options.segmentAgeMs ?? DEFAULT_SEGMENT_AGE_MS;
    this.#windowMs = options.commitWindowMs ?? DEFAULT_COMMIT_WINDOW_MS;
    this.#batch = options.commitBatch ?? DEFAULT_COMMIT_BATCH;
    // an idle segment is sealed too, so the queues can let go of it
    this.#idleTimer = setInterval(() => this.#kick(), Math.max(1000, this.#segmentAgeMs / 2));
    this.#idleTimer.unref();
  }

  /** The queues that get profiles from now on; another set starts a new segment. */
  route(queues: DurableQueue[]): void {
    if (queues.map((q) => q.name).join('\0') !== this.#routes.map((q) => q.name).join('\0')) this.#routesChanged = true;
    this.#routes = queues;
  }

  /** Resolves once `profile` is durable and queued for `to` (undefined: every routed queue). */
  write(profile: ScrapedProfile, to: readonly string[] | undefined): Promise<void> {
    const at = Date.now();
    const buffers = encodeRecord(profile, at, to);
    return new Promise<void>((done) => {
      this.#pending.push({ profile, buffers, length: recordLength(buffers), at, to, done });
      if (this.#pending.length >= this.#batch) this.#windowFull?.();
      this.#kick();
    });
  }

  /** Stops the idle timer and waits for the commit under way. */
  async stop(): Promise<void> {
    clearInterval(this.#idleTimer);
    await this.#committing;
  }

  /** Seals the open segment, if any: the queues may let go of it once their items are done. */
  async sealOpen(): Promise<void> {
    if (this.#segment) await this.#seal(this.#segment);
  }

  /** One commit loop at a time: it takes what is pending, and seals a segment that is due. */
  #kick(): void {
    this.#committing ??= this.#commitLoop().finally(() => {
      this.#committing = undefined;
      if (this.#pending.length > 0) this.#kick();
    });
  }

  async #commitLoop(): Promise<void> {
    for (;;) {
      if (this.#pending.length === 0) {
        const idle = this.#segment;
        if (idle && Date.now() - idle.createdAt >= this.#segmentAgeMs) await this.#seal(idle);
        return;
      }
      if (this.#windowMs > 0 && this.#pending.length < this.#batch) await this.#window();
      const batch = this.#pending;
      this.#pending = [];
      const started = process.hrtime.bigint();
      await this.#commit(batch);
      this.#deps.metrics.spoolCommits.observe(Number(process.hrtime.bigint() - started) / 1e9);
      for (const p of batch) p.done();
    }
  }

  /** Waits the commit window, or until a batch is full. */
  async #window(): Promise<void> {
    await new Promise<void>((r) => {
      const timer = setTimeout(r, this.#windowMs);
      this.#windowFull = () => {
        clearTimeout(timer);
        r();
      };
    });
    this.#windowFull = undefined;
  }

  async #commit(batch: Pending[]): Promise<void> {
    let segment: Segment | undefined;
    let written = 0;
    try {
      segment = await this.#writableSegment();
      written = await writeAll(segment.fh, batch.flatMap((p) => p.buffers), segment.size);
      await segment.fh.datasync();
    } catch (err) {
      if (segment) segment.broken = true;
      this.#diskFailed(err);
      for (const p of batch) for (const q of targets(p.to, this.#routes)) q.push(undefined, 0, p.length, p.profile, p.at);
      return;
    }
    if (this.#diskFailing) {
      this.#diskFailing = false;
      this.#deps.logger.info({ dir: this.#root }, 'profiles are written to the state_dir again');
    }
    let offset = segment.size;
    segment.size += written;
    for (const p of batch) {
      for (const q of targets(p.to, segment.queues)) q.push(segment.id, offset, p.length, p.profile, p.at);
      offset += p.length;
    }
  }

  /** Counted each time; logged once per streak of failures. */
  #diskFailed(err: unknown): void {
    this.#deps.metrics.spoolWriteErrors.inc();
    if (this.#diskFailing) return;
    this.#diskFailing = true;
    const e = err as NodeJS.ErrnoException;
    this.#deps.logger.error(
      { dir: this.#root, error: e.code ?? e.message, ...(e.code === 'ENOSPC' ? { hint: 'the disk is full' } : {}) },
      'cannot write profiles to the state_dir: they go to the repositories from memory only, and a restart would lose those still queued',
    );
  }

  async #writableSegment(): Promise<Segment> {
    const current = this.#segment;
    if (current && !current.broken && !this.#routesChanged && current.size < this.#segmentBytes && Date.now() - current.createdAt < this.#segmentAgeMs) {
      return current;
    }
    if (current) await this.#seal(current);
    this.#routesChanged = false;
    const segment = await this.#createSegment(this.#routes);
    this.#segment = segment;
    return segment;
  }

  async #createSegment(queues: readonly DurableQueue[]): Promise<Segment> {
    // time first, so names sort in the order segments were made
    const id = `${Date.now().toString().padStart(14, '0')}-${this.#runId}-${(this.#counter++).toString().padStart(6, '0')}`;
    const path = join(this.#spoolDir, segmentFile(id));
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
      await fh.datasync();
      for (const q of queues) await link(path, join(q.dir, segmentFile(id)));
      await Promise.all(queues.map((q) => syncDir(q.dir)));
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      for (const q of queues) await unlink(join(q.dir, segmentFile(id))).catch(() => undefined);
      throw err;
    }
    for (const q of queues) q.addSegment(id);
    return { id, fh, queues, createdAt: Date.now(), size: SEGMENT_MAGIC.length, broken: false };
  }

  async #seal(segment: Segment): Promise<void> {
    if (this.#segment === segment) this.#segment = undefined;
    await segment.fh.close().catch(() => undefined);
    await unlink(join(this.#spoolDir, segmentFile(segment.id))).catch(() => undefined);
    for (const q of segment.queues) q.seal(segment.id);
  }
}

function targets(to: readonly string[] | undefined, queues: readonly DurableQueue[]): readonly DurableQueue[] {
  return to ? queues.filter((q) => to.includes(q.name)) : queues;
}

async function writeAll(fh: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = 0;
  let rest = buffers;
  while (done < total) {
    const { bytesWritten } = await fh.writev(rest, position + done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
    if (done < total) rest = skipBytes(rest, bytesWritten);
  }
  return total;
}

function skipBytes(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
