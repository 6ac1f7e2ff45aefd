import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Delivery } from './delivery.js';
import { DurableQueue, QueueHandle, segmentFile, syncDir } from './queue.js';
import type { QueueDeps, QueueSettings } from './queue.js';
import { orderingOf } from './order.js';
import { encodeRecord, recordLength, SEGMENT_MAGIC } from './queue-record.js';
import type { Repository } from './repository.js';
import { lockStateDir, unlockStateDir } from './state-lock.js';

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

/**
 * Durable delivery: every scraped profile is written once, to a shared spool
 * segment, and synced before submit() resolves; only then does each
 * repository's queue see it. A crash can therefore never leave a profile
 * with one repository and lost for another.
 *
 * Layout under `state_dir/queues/`:
 *
 *   .spool/<id>.seg          the segment being appended to (a name to write through)
 *   <repository>/<id>.seg    a hard link to each segment the repository still needs
 *   <repository>/<id>.done   offsets of the segment's items it has finished
 *   <repository>/preparing   the item whose prepare() runs (blank when none)
 *   <repository>/quarantine/ items given up on (damaged, or failed to prepare), moved aside
 *
 * A segment is created, synced, linked into every repository's folder and
 * the folders synced before any profile goes into it; profiles are appended
 * as checksummed records and synced in groups (group commit). The link count
 * is the reference count: a segment's disk space comes back when the last
 * repository has finished its items and removed its link. One file per
 * segment instead of one per profile because creating a file costs far more
 * than appending (see bench/delivery.ts).
 */
export interface Spool extends Delivery {
  /** The state_dir it was opened in (absolute). */
  readonly stateDir: string;
  /** `state_dir/queues`. */
  readonly root: string;
  /** Binds a repository to its queue (`queues/<name>`, read from disk the first time). Nothing is sent until activate(). */
  attach(repository: Repository, settings: QueueSettings): Promise<QueueHandle>;
  /**
   * Makes these handles the ones that send and the repositories that receive
   * new profiles. A queue whose handle is not in the set stops sending; its
   * items stay on disk.
   */
  activate(handles: ReadonlyMap<string, QueueHandle>): Delivery;
  /** The per-repository queue, by name. */
  queue(name: string): DurableQueue | undefined;
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
const SPOOL_DIR = '.spool';

/** Opens (creating) `stateDir/queues`, clearing what a previous run left in `.spool/`. */
export async function openSpool(stateDir: string, deps: QueueDeps, options: SpoolOptions = {}): Promise<Spool> {
  const root = join(resolve(stateDir), 'queues');
  const spoolDir = join(root, SPOOL_DIR);
  try {
    await mkdir(spoolDir, { recursive: true });
  } catch (err) {
    throw new Error(`state_dir ${JSON.stringify(stateDir)}: cannot create ${spoolDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; set state_dir to a writable folder (under systemd, StateDirectory= sets $STATE_DIRECTORY)`, { cause: err });
  }
  await lockStateDir(root);
  // The previous run's open segment: its records are reachable through the
  // repositories' links; a segment no folder links to never held an acknowledged profile.
  for (const name of await readdir(spoolDir)) await unlink(join(spoolDir, name)).catch(() => undefined);
  return new FileSpool(resolve(stateDir), root, deps, options);
}

class FileSpool implements Spool {
  readonly stateDir: string;
  readonly root: string;
  readonly #spoolDir: string;
  readonly #deps: QueueDeps;
  readonly #segmentBytes: number;
  readonly #segmentAgeMs: number;
  readonly #windowMs: number;
  readonly #batch: number;
  /** Ends the current commit window early. */
  #windowFull: (() => void) | undefined;
  readonly #queues = new Map<string, DurableQueue>();
  #routes: DurableQueue[] = [];
  #handles: ReadonlyMap<string, QueueHandle> = new Map();
  #segment: Segment | undefined;
  #routesChanged = true;
  #pending: Pending[] = [];
  #committing: Promise<void> | undefined;
  readonly #idleTimer: NodeJS.Timeout;
  #closed = false;
  #counter = 0;
  #diskFailing = false;
  readonly #runId = randomBytes(3).toString('hex');
  #warnedOrphans = false;

  constructor(stateDir: string, root: string, deps: QueueDeps, options: SpoolOptions) {
    this.stateDir = stateDir;
    this.root = root;
    this.#spoolDir = join(root, SPOOL_DIR);
    this.#deps = deps;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#segmentAgeMs = options.segmentAgeMs ?? DEFAULT_SEGMENT_AGE_MS;
    this.#windowMs = options.commitWindowMs ?? DEFAULT_COMMIT_WINDOW_MS;
    this.#batch = options.commitBatch ?? DEFAULT_COMMIT_BATCH;
    // an idle segment is sealed too, so the queues can let go of it
    this.#idleTimer = setInterval(() => this.#kick(), Math.max(1000, this.#segmentAgeMs / 2));
    this.#idleTimer.unref();
  }

  get outboxes(): ReadonlyMap<string, QueueHandle> {
    return this.#handles;
  }

  queue(name: string): DurableQueue | undefined {
    return this.#queues.get(name);
  }

  async attach(repository: Repository, settings: QueueSettings): Promise<QueueHandle> {
    let queue = this.#queues.get(repository.name);
    if (!queue) {
      // the order a repository wants is fixed when its queue opens (a reload that turns a name into another kind keeps it until the next start)
      queue = new DurableQueue(repository.name, join(this.root, repository.name), this.#deps, orderingOf(repository));
      await queue.open();
      this.#queues.set(repository.name, queue);
      const q = queue;
      this.#deps.metrics.queueSources.set(repository.name, () => q.stats());
    }
    const name = repository.name;
    return new QueueHandle(queue, repository, settings, {
      enqueue: (profile) => this.#submit(profile, [name]),
      onClose: (handle) => handle.queue.detach(handle),
    });
  }

  activate(handles: ReadonlyMap<string, QueueHandle>): Delivery {
    const routes: DurableQueue[] = [];
    for (const handle of handles.values()) {
      if (handle.queue.handle !== handle) handle.queue.use(handle);
      routes.push(handle.queue);
    }
    const before = this.#routes.map((q) => q.name).join('\0');
    if (routes.map((q) => q.name).join('\0') !== before) this.#routesChanged = true;
    this.#routes = routes;
    this.#handles = handles;
    void this.#warnOrphans();
    return this;
  }

  submit(profile: ScrapedProfile): Promise<void> {
    return this.#submit(profile, undefined);
  }

  #submit(profile: ScrapedProfile, to: readonly string[] | undefined): Promise<void> {
    if (this.#closed) {
      this.#deps.metrics.queueDropped.inc({ repository: to?.join(',') ?? '*', reason: 'closed' });
      return Promise.resolve();
    }
    const at = Date.now();
    const buffers = encodeRecord(profile, at, to);
    return new Promise<void>((done) => {
      this.#pending.push({ profile, buffers, length: recordLength(buffers), at, to, done });
      if (this.#pending.length >= this.#batch) this.#windowFull?.();
      this.#kick();
    });
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
      if (this.#windowMs > 0 && this.#pending.length < this.#batch) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, this.#windowMs);
          this.#windowFull = () => {
            clearTimeout(timer);
            r();
          };
        });
        this.#windowFull = undefined;
      }
      const batch = this.#pending;
      this.#pending = [];
      const started = process.hrtime.bigint();
      await this.#commit(batch);
      this.#deps.metrics.spoolCommits.observe(Number(process.hrtime.bigint() - started) / 1e9);
      for (const p of batch) p.done();
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    let segment: Segment | undefined;
    let written = 0;
    try {
      segment = await this.#writableSegment();
      const buffers = batch.flatMap((p) => p.buffers);
      written = await writeAll(segment.fh, buffers, segment.size);
      await segment.fh.datasync();
    } catch (err) {
      if (segment) segment.broken = true;
      this.#deps.metrics.spoolWriteErrors.inc();
      if (!this.#diskFailing) {
        this.#diskFailing = true;
        const e = err as NodeJS.ErrnoException;
        this.#deps.logger.error(
          { dir: this.root, error: e.code ?? e.message, ...(e.code === 'ENOSPC' ? { hint: 'the disk is full' } : {}) },
          'cannot write profiles to the state_dir: they go to the repositories from memory only, and a restart would lose those still queued',
        );
      }
      for (const p of batch) for (const q of this.#targets(p.to, this.#routes)) q.push(undefined, 0, p.length, p.profile, p.at);
      return;
    }
    if (this.#diskFailing) {
      this.#diskFailing = false;
      this.#deps.logger.info({ dir: this.root }, 'profiles are written to the state_dir again');
    }
    let offset = segment.size;
    segment.size += written;
    for (const p of batch) {
      for (const q of this.#targets(p.to, segment.queues)) q.push(segment.id, offset, p.length, p.profile, p.at);
      offset += p.length;
    }
  }

  #targets(to: readonly string[] | undefined, queues: readonly DurableQueue[]): readonly DurableQueue[] {
    return to ? queues.filter((q) => to.includes(q.name)) : queues;
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

  async #warnOrphans(): Promise<void> {
    if (this.#warnedOrphans) return;
    this.#warnedOrphans = true;
    try {
      for (const name of await readdir(this.root)) {
        if (name === SPOOL_DIR || name === '.lock' || this.#queues.has(name)) continue;
        const files = await readdir(join(this.root, name)).catch(() => [] as string[]);
        const segments = files.filter((f) => f.endsWith('.seg')).length;
        if (segments > 0) {
          this.#deps.logger.warn({ dir: join(this.root, name), segments }, 'a queue folder belongs to no configured repository: its profiles wait there until a repository of that name is configured again (or delete the folder)');
        }
      }
    } catch {
      // only a hint
    }
  }

  /** Commits what is pending, stops every queue (sends in flight get `deadlineMs`), notes what is finished. */
  async close(deadlineMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#idleTimer);
    await this.#committing;
    await Promise.all([...this.#handles.values()].map((h) => h.close(deadlineMs)));
    if (this.#segment) await this.#seal(this.#segment);
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    for (const name of this.#queues.keys()) this.#deps.metrics.queueSources.delete(name);
    await unlockStateDir(this.root);
  }
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
