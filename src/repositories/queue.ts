import { mkdir, open, readdir, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { decodeProfile, readRecord, RecordError, scanSegment } from './queue-record.js';
import type { Outbox } from './outbox.js';
import type { Repository, SendResult } from './repository.js';
import { nextDelay, sendWithTimeout } from './retry.js';
import type { BackoffPolicy } from './retry.js';

/** How one repository's queue behaves: its bounds, backoff and send timeout. */
export interface QueueSettings {
  /** Bytes of queued profiles; past this the oldest are dropped. */
  readonly maxBytes: number;
  /** A profile queued longer than this is dropped. */
  readonly maxAgeMs: number;
  readonly policy: BackoffPolicy;
  /** Per send attempt. */
  readonly timeoutMs: number;
  /** Sends in flight at once while the repository answers. */
  readonly parallelism: number;
}

/** What a repository makes of a profile before sending it (Pyroscope: the delta). */
export type Prepared = { readonly status: 'send'; readonly profile: ScrapedProfile } | { readonly status: 'skipped'; readonly reason: string };

/**
 * A repository that transforms each profile before sending it. The queue calls
 * prepare() exactly once per profile, in the order the profiles were queued,
 * and keeps the result for the retries of that profile.
 */
export interface Preparing {
  prepare(profile: ScrapedProfile): Promise<Prepared>;
}

function preparerOf(repository: Repository): Preparing | undefined {
  const p = (repository as Partial<Preparing>).prepare;
  return typeof p === 'function' ? (repository as Repository & Preparing) : undefined;
}

/** One queued profile. Kept small: a large backlog is mostly offsets. */
interface Entry {
  readonly seg: QueueSegment | undefined;
  readonly offset: number;
  /** Bytes on disk (the whole record). */
  readonly length: number;
  /** ms since the epoch: when it was queued. */
  readonly at: number;
  /** Held in memory while the queue's cache has room; else read back from disk. */
  profile: ScrapedProfile | undefined;
  prepared: { readonly kind: string; readonly value: Prepared } | undefined;
  state: 'pending' | 'sending' | 'done';
}

/** This queue's view of one spool segment: a hard link in its folder, and the offsets it has finished. */
interface QueueSegment {
  readonly id: string;
  pending: number;
  sealed: boolean;
  removed: boolean;
  acks: number[];
  doneFile: FileHandle | undefined;
  reader: Promise<FileHandle> | undefined;
}

export interface QueueDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Bytes of profiles a queue keeps in memory to send without reading them back (default 32 MiB). */
  readonly cacheBytes?: number;
  /** How often finished offsets are written down (default 1 s). */
  readonly ackFlushMs?: number;
}

const DEFAULT_CACHE_BYTES = 32 * 1024 ** 2;
const DEFAULT_ACK_FLUSH_MS = 1000;
const SWEEP_EVERY_MS = 10_000;
const OUTAGE_LOG_EVERY_MS = 60_000;

export const segmentFile = (id: string): string => `${id}.seg`;
export const doneFile = (id: string): string => `${id}.done`;

/**
 * Rate-limits a kind of log line to one a second; the next line that gets out
 * says how many were folded into it, so every event is still accounted for.
 */
class LineLimiter {
  #last = 0;
  #folded = 0;
  emit(log: (folded: number) => void): void {
    const now = Date.now();
    if (now - this.#last < 1000) {
      this.#folded++;
      return;
    }
    this.#last = now;
    const folded = this.#folded;
    this.#folded = 0;
    log(folded);
  }
}

/**
 * One repository's queue: the profiles it still has to take, in the order
 * they were scraped. The profile bytes live once in the shared spool
 * segments; this queue's folder holds a hard link to each segment it still
 * needs and a `.done` file per segment with the offsets it has finished. An
 * item is finished only when the repository took it, refused it for good,
 * or a bound dropped it; a segment's link goes when all its items are done,
 * and the file itself when the last queue lets go of it.
 *
 * Sending: up to `parallelism` in flight while the repository answers; after
 * a retryable failure the whole queue backs off (exponential with jitter, or
 * the repository's Retry-After) and probes with one send until one succeeds.
 */
export class DurableQueue {
  readonly name: string;
  readonly dir: string;
  readonly #deps: QueueDeps;
  readonly #cacheLimit: number;
  #entries: Entry[] = [];
  #head = 0;
  #count = 0;
  #bytes = 0;
  #cached = 0;
  readonly #segments = new Map<string, QueueSegment>();
  #handle: QueueHandle | undefined;
  #ready = false;
  #recovering: Promise<void> | undefined;
  #stopped = false;
  #failures = 0;
  /** Bumped with each counted failure: sends that started before it do not count again. */
  #round = 0;
  #failingSince = 0;
  #lastOutageLog = 0;
  #pausedUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #ackWriting: Promise<void> = Promise.resolve();
  readonly #sweepTimer: NodeJS.Timeout;
  #prepChain: Promise<unknown> = Promise.resolve();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #removals = new Set<Promise<void>>();
  readonly #dropLog = new LineLimiter();
  readonly #rejectLog = new LineLimiter();

  constructor(name: string, dir: string, deps: QueueDeps) {
    this.name = name;
    this.dir = dir;
    this.#deps = deps;
    this.#cacheLimit = deps.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP_EVERY_MS);
    this.#sweepTimer.unref();
  }

  get ready(): boolean {
    return this.#ready;
  }

  get handle(): QueueHandle | undefined {
    return this.#handle;
  }

  /**
   * Lists the folder now (segments linked later belong to this run) and
   * reads the backlog in the background; sending starts when it is read.
   * Resolves when the listing is done.
   */
  async open(): Promise<void> {
    await mkdir(join(this.dir, 'quarantine'), { recursive: true });
    const names = await readdir(this.dir);
    const ids = names.filter((n) => n.endsWith('.seg')).map((n) => n.slice(0, -4)).sort();
    const known = new Set(ids);
    for (const n of names) {
      if (n.endsWith('.done') && !known.has(n.slice(0, -5))) await unlink(join(this.dir, n)).catch(() => undefined);
    }
    this.#recovering = this.#recover(ids)
      .catch((err: unknown) => {
        this.#deps.logger.error({ repository: this.name, dir: this.dir, error: (err as Error).message }, 'reading the queue backlog failed; what was read is sent, the rest stays on disk for the next start');
      })
      .finally(() => {
        this.#ready = true;
        this.#enforceBounds();
        this.#pump();
      });
  }

  /** Resolves when the backlog on disk has been read. */
  whenReady(): Promise<void> {
    return this.#recovering ?? Promise.resolve();
  }

  async #recover(ids: string[]): Promise<void> {
    const recovered: Entry[] = [];
    let damaged = 0;
    for (const id of ids) {
      const seg: QueueSegment = { id, pending: 0, sealed: true, removed: false, acks: [], doneFile: undefined, reader: undefined };
      const path = join(this.dir, segmentFile(id));
      const done = new Set<number>();
      try {
        const raw = await readFile(join(this.dir, doneFile(id)));
        for (let i = 0; i + 4 <= raw.length; i += 4) done.add(raw.readUInt32LE(i));
        // a write cut short: later notes must start on a 4-byte boundary
        if (raw.length % 4 !== 0) await truncate(join(this.dir, doneFile(id)), raw.length - (raw.length % 4));
      } catch {
        // no offsets finished yet
      }
      let fh: FileHandle | undefined;
      const before = recovered.length;
      try {
        fh = await open(path, 'r');
        const file = fh;
        const { size } = await file.stat();
        await scanSegment(file, size, async (e) => {
          if (e.kind === 'damage') {
            if (e.tail) {
              this.#deps.logger.info({ repository: this.name, segment: id, offset: e.offset, bytes: e.length }, 'ignoring an incomplete record at the end of a segment (the daemon stopped while writing it; it was never acknowledged)');
              return;
            }
            damaged++;
            await this.#quarantineBytes(file, id, e.offset, e.length, e.reason);
            return;
          }
          if (done.has(e.offset)) return;
          if (e.meta.to && !e.meta.to.includes(this.name)) {
            seg.acks.push(e.offset);
            return;
          }
          seg.pending++;
          recovered.push({ seg, offset: e.offset, length: e.length, at: e.meta.enqueuedAt, profile: undefined, prepared: undefined, state: 'pending' });
        });
      } catch (err) {
        damaged++;
        recovered.length = before;
        await fh?.close().catch(() => undefined);
        fh = undefined;
        const dest = join(this.dir, 'quarantine', segmentFile(id));
        await rename(path, dest).catch(() => undefined);
        await unlink(join(this.dir, doneFile(id))).catch(() => undefined);
        this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'damaged' });
        this.#deps.logger.error({ repository: this.name, segment: path, moved_to: dest, error: (err as Error).message }, 'queue segment is unreadable: moved to quarantine; the profiles in it are not sent');
        continue;
      }
      await fh.close().catch(() => undefined);
      if (seg.pending === 0) {
        await this.#removeSegment(seg);
      } else {
        this.#segments.set(id, seg);
        if (seg.acks.length > 0) this.#scheduleAckFlush();
      }
    }
    // backlog first, then whatever arrived while it was read
    const live = this.#entries.slice(this.#head);
    this.#entries = recovered.concat(live);
    this.#head = 0;
    for (const e of recovered) {
      this.#count++;
      this.#bytes += e.length;
    }
    if (recovered.length > 0 || damaged > 0) {
      this.#deps.logger.info({ repository: this.name, profiles: recovered.length, bytes: recovered.reduce((n, e) => n + e.length, 0), damaged }, 'queue backlog found on disk: sending it first');
    }
  }

  async #quarantineBytes(fh: FileHandle, id: string, offset: number, length: number, reason: string): Promise<void> {
    const dest = join(this.dir, 'quarantine', `${id}-${offset}.damaged`);
    try {
      const bytes = Buffer.alloc(length);
      await fh.read(bytes, 0, length, offset);
      await writeFile(dest, bytes);
    } catch {
      // the log line below still says what was lost
    }
    this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'damaged' });
    this.#deps.logger.error({ repository: this.name, segment: join(this.dir, segmentFile(id)), offset, bytes: length, reason, moved_to: dest }, 'damaged queue item: its bytes are moved to quarantine; the items around it are kept');
  }

  /** A new spool segment now linked into this queue's folder. */
  addSegment(id: string): void {
    if (this.#segments.has(id)) return;
    this.#segments.set(id, { id, pending: 0, sealed: false, removed: false, acks: [], doneFile: undefined, reader: undefined });
  }

  /** The spool appends no more to this segment: once its items are done, its link can go. */
  seal(id: string): void {
    const seg = this.#segments.get(id);
    if (!seg) return;
    seg.sealed = true;
    if (seg.pending === 0) this.#remove(seg);
  }

  /** A profile made durable in segment `segmentId` at `offset` (no segment: held in memory only). */
  push(segmentId: string | undefined, offset: number, length: number, profile: ScrapedProfile, at: number): void {
    const seg = segmentId === undefined ? undefined : this.#segments.get(segmentId);
    if (seg) seg.pending++;
    const keep = !this.#stopped && this.#cached + profile.data.length <= this.#cacheLimit;
    if (keep) this.#cached += profile.data.length;
    this.#entries.push({ seg, offset, length, at, profile: keep ? profile : undefined, prepared: undefined, state: 'pending' });
    this.#count++;
    this.#bytes += length;
    if (!keep && !seg) {
      // memory-only and no room: nothing to read it back from
      const entry = this.#entries[this.#entries.length - 1] as Entry;
      entry.profile = profile;
      this.#cached += profile.data.length;
    }
    this.#enforceBounds();
    this.#pump();
  }

  stats(): { length: number; bytes: number; oldestAgeMs: number } {
    return { length: this.#count, bytes: this.#bytes, oldestAgeMs: this.#oldestAgeMs() };
  }

  #oldestAgeMs(): number {
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i] as Entry;
      if (e.state !== 'done') return Math.max(0, Date.now() - e.at);
    }
    return 0;
  }

  /** Makes `handle` the one that sends; the previous one (if any) is retired by its owner. */
  use(handle: QueueHandle): void {
    this.#handle = handle;
    this.#stopped = false;
    this.#failures = 0;
    this.#pausedUntil = 0;
    this.#pump();
  }

  /** No handle sends any more (the repository left the config, or the daemon stops). Items stay on disk. */
  detach(handle: QueueHandle): void {
    if (this.#handle !== handle) return;
    this.#handle = undefined;
    this.#stopped = true;
    clearTimeout(this.#timer);
    // memory goes back; the disk still has every item
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i] as Entry;
      if (e.state === 'pending' && e.seg && e.profile) {
        this.#cached -= e.profile.data.length;
        e.profile = undefined;
      }
    }
  }

  /** Writes down what is finished and closes files. */
  async close(): Promise<void> {
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#timer);
    clearTimeout(this.#ackTimer);
    await this.#recovering;
    await Promise.all([...this.#removals]);
    await this.#flushAcks();
    for (const seg of this.#segments.values()) {
      await seg.doneFile?.close().catch(() => undefined);
      seg.doneFile = undefined;
      const reader = seg.reader;
      seg.reader = undefined;
      if (reader) await reader.then((fh) => fh.close()).catch(() => undefined);
    }
  }

  #pump(): void {
    const handle = this.#handle;
    if (!this.#ready || !handle || this.#stopped || handle.closing) return;
    const now = Date.now();
    if (this.#pausedUntil > now) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#pump(), this.#pausedUntil - now);
      this.#timer.unref();
      return;
    }
    const limit = this.#failures > 0 ? 1 : handle.settings.parallelism;
    for (let i = this.#head; i < this.#entries.length && handle.sending < limit; i++) {
      const e = this.#entries[i] as Entry;
      if (e.state !== 'pending') continue;
      if (now - e.at > handle.settings.maxAgeMs) {
        this.#drop(e, 'expired');
        continue;
      }
      this.#start(e, handle);
    }
    this.#compact();
  }

  #start(entry: Entry, handle: QueueHandle): void {
    entry.state = 'sending';
    handle.sending++;
    const preparer = preparerOf(handle.repository);
    const round = this.#round;
    // profiles are read back and prepared one at a time, in queue order
    const loaded = this.#prepChain.then(() => this.#load(entry, handle, preparer));
    this.#prepChain = loaded.catch(() => undefined);
    const p = loaded
      .then(async (toSend) => {
        if (toSend === undefined) return;
        const result: SendResult =
          toSend.status === 'skipped' ? { status: 'skipped', reason: toSend.reason } : await sendWithTimeout(handle.repository, toSend.profile, handle.settings.timeoutMs, handle.signal);
        this.#settle(entry, handle, result, round);
      })
      .catch((err: unknown) => {
        // a bug in an adapter: retry like any other failure rather than lose the profile
        this.#settle(entry, handle, { status: 'retryable', error: `internal error: ${(err as Error).message}` }, round);
      })
      .finally(() => {
        handle.sending--;
        this.#inFlight.delete(p);
        handle.inFlight.delete(p);
        this.#pump();
      });
    this.#inFlight.add(p);
    handle.inFlight.add(p);
  }

  /** The profile to send (read back if not in memory, prepared once); undefined when the item was dropped. */
  async #load(entry: Entry, handle: QueueHandle, preparer: Preparing | undefined): Promise<Prepared | undefined> {
    if (entry.state !== 'sending') return undefined;
    let profile = entry.profile;
    if (!profile) {
      try {
        profile = await this.#read(entry);
      } catch (err) {
        this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'damaged' });
        this.#deps.logger.error({ repository: this.name, segment: entry.seg?.id, offset: entry.offset, error: (err as Error).message }, 'queue item damaged on disk: dropped');
        this.#finish(entry);
        return undefined;
      }
    }
    if (!preparer) return { status: 'send', profile };
    const kind = handle.repository.kind;
    if (entry.prepared?.kind !== kind) entry.prepared = { kind, value: await preparer.prepare(profile) };
    return entry.prepared.value;
  }

  async #read(entry: Entry): Promise<ScrapedProfile> {
    const seg = entry.seg;
    if (!seg) throw new RecordError('held in memory only, and gone');
    seg.reader ??= open(join(this.dir, segmentFile(seg.id)), 'r');
    const fh = await seg.reader;
    const body = await readRecord(fh, entry.offset, entry.length);
    return decodeProfile(body).profile;
  }

  #settle(entry: Entry, handle: QueueHandle, result: SendResult, round: number): void {
    if (entry.state !== 'sending') return;
    const { logger, metrics } = this.#deps;
    const name = this.name;
    if (result.status === 'retryable') {
      entry.state = 'pending';
      // a send cut short by a retired or closing handle is not the repository's fault
      if (handle !== this.#handle || handle.closing || this.#stopped) return;
      metrics.sendRetries.inc({ repository: name });
      // sends that were in flight together fail together: one failure per round backs off once
      if (round !== this.#round) return;
      this.#round++;
      const delay = nextDelay(result, handle.settings.policy, this.#failures);
      this.#failures++;
      this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + delay);
      const now = Date.now();
      if (this.#failures === 1) this.#failingSince = now;
      if (this.#failures === 1 || now - this.#lastOutageLog >= OUTAGE_LOG_EVERY_MS) {
        this.#lastOutageLog = now;
        logger.warn({ repository: name, error: result.error, attempts: this.#failures, retry_in_ms: Math.round(delay), queued: this.#count, queued_bytes: this.#bytes }, 'repository did not take a profile; retrying with backoff, profiles wait on disk');
      } else {
        logger.debug({ repository: name, error: result.error, attempts: this.#failures, retry_in_ms: Math.round(delay) }, 'send failed, will retry');
      }
      return;
    }
    if (this.#failures > 0 && handle === this.#handle) {
      logger.info({ repository: name, failed_attempts: this.#failures, outage_ms: Date.now() - this.#failingSince, queued: this.#count - 1 }, 'repository takes profiles again');
      this.#failures = 0;
      this.#pausedUntil = 0;
      this.#round++;
    }
    const profile = entry.profile;
    const who = profile ? { service: profile.service, type: profile.type, instance: profile.labels['instance'] } : { segment: entry.seg?.id, offset: entry.offset };
    switch (result.status) {
      case 'ok':
        metrics.profilesSent.inc({ repository: name, result: 'ok' });
        break;
      case 'skipped':
        metrics.profilesSent.inc({ repository: name, result: 'skipped' });
        logger.debug({ repository: name, ...who, reason: result.reason }, 'profile not sent');
        break;
      case 'permanent':
        metrics.profilesSent.inc({ repository: name, result: 'permanent' });
        metrics.queueDropped.inc({ repository: name, reason: 'rejected' });
        this.#rejectLog.emit((folded) => logger.error({ repository: name, ...who, answer: result.error, ...(folded ? { also_rejected: folded } : {}) }, 'repository refused the profile for good; it is dropped'));
        break;
    }
    this.#finish(entry);
  }

  #drop(entry: Entry, reason: 'full' | 'expired'): void {
    const profile = entry.profile;
    const who = profile ? { service: profile.service, type: profile.type, instance: profile.labels['instance'] } : { segment: entry.seg?.id, offset: entry.offset };
    const ageMs = Date.now() - entry.at;
    this.#deps.metrics.queueDropped.inc({ repository: this.name, reason });
    this.#dropLog.emit((folded) =>
      this.#deps.logger.warn(
        { repository: this.name, reason, ...who, age_ms: ageMs, queued_bytes: this.#bytes, ...(folded ? { also_dropped: folded } : {}) },
        reason === 'full' ? 'queue full (queue.max_size): oldest profile dropped' : 'profile older than queue.max_age: dropped',
      ),
    );
    this.#finish(entry);
  }

  #finish(entry: Entry): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    this.#count--;
    this.#bytes -= entry.length;
    if (entry.profile) this.#cached -= entry.profile.data.length;
    entry.profile = undefined;
    entry.prepared = undefined;
    const seg = entry.seg;
    if (seg && !seg.removed) {
      seg.pending--;
      seg.acks.push(entry.offset);
      if (seg.pending === 0 && seg.sealed) this.#remove(seg);
      else this.#scheduleAckFlush();
    }
  }

  #enforceBounds(): void {
    const handle = this.#handle;
    const maxBytes = handle?.settings.maxBytes;
    if (maxBytes === undefined || !this.#ready) return;
    for (let i = this.#head; i < this.#entries.length && this.#bytes > maxBytes; i++) {
      const e = this.#entries[i] as Entry;
      if (e.state === 'pending') this.#drop(e, 'full');
    }
    this.#compact();
  }

  #sweep(): void {
    const handle = this.#handle;
    if (!handle || !this.#ready) return;
    const now = Date.now();
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i] as Entry;
      if (now - e.at <= handle.settings.maxAgeMs) break;
      if (e.state === 'pending') this.#drop(e, 'expired');
    }
    this.#compact();
  }

  #compact(): void {
    while (this.#head < this.#entries.length && (this.#entries[this.#head] as Entry).state === 'done') this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  #scheduleAckFlush(): void {
    if (this.#ackTimer) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      void this.#flushAcks();
    }, this.#deps.ackFlushMs ?? DEFAULT_ACK_FLUSH_MS);
    this.#ackTimer.unref();
  }

  /** Appends finished offsets to each segment's `.done` file. Losing the last few to a crash only means sending those again. */
  #flushAcks(): Promise<void> {
    this.#ackWriting = this.#ackWriting.then(async () => {
      for (const seg of this.#segments.values()) {
        if (seg.acks.length === 0 || seg.removed) continue;
        const buf = Buffer.allocUnsafe(seg.acks.length * 4);
        seg.acks.forEach((o, i) => buf.writeUInt32LE(o, i * 4));
        seg.acks = [];
        try {
          seg.doneFile ??= await open(join(this.dir, doneFile(seg.id)), 'a');
          if (seg.removed) continue;
          await seg.doneFile.write(buf);
          await seg.doneFile.datasync();
        } catch (err) {
          this.#deps.logger.warn({ repository: this.name, segment: seg.id, error: (err as Error).message }, 'could not note finished profiles; after a restart they are sent again');
        }
      }
    });
    return this.#ackWriting;
  }

  #remove(seg: QueueSegment): void {
    const p = this.#removeSegment(seg).finally(() => this.#removals.delete(p));
    this.#removals.add(p);
  }

  async #removeSegment(seg: QueueSegment): Promise<void> {
    if (seg.removed) return;
    seg.removed = true;
    this.#segments.delete(seg.id);
    seg.acks = [];
    await this.#ackWriting.catch(() => undefined);
    await seg.doneFile?.close().catch(() => undefined);
    seg.doneFile = undefined;
    const reader = seg.reader;
    seg.reader = undefined;
    if (reader) await reader.then((fh) => fh.close()).catch(() => undefined);
    await unlink(join(this.dir, segmentFile(seg.id))).catch(() => undefined);
    await unlink(join(this.dir, doneFile(seg.id))).catch(() => undefined);
  }
}

/**
 * A repository bound to its queue: the Outbox the daemon holds. The queue
 * outlives it: a reload that changes a repository's settings binds a new
 * handle to the same queue, and nothing queued moves.
 */
export class QueueHandle implements Outbox {
  readonly name: string;
  readonly repository: Repository;
  readonly settings: QueueSettings;
  readonly queue: DurableQueue;
  sending = 0;
  closing = false;
  readonly inFlight = new Set<Promise<void>>();
  readonly #controller = new AbortController();
  readonly #enqueue: (profile: ScrapedProfile) => Promise<void>;
  readonly #onClose: (handle: QueueHandle) => void;
  #deadline: NodeJS.Timeout | undefined;
  #deadlineAt = Infinity;
  #closed: Promise<void> | undefined;

  constructor(queue: DurableQueue, repository: Repository, settings: QueueSettings, hooks: { enqueue: (p: ScrapedProfile) => Promise<void>; onClose: (h: QueueHandle) => void }) {
    this.name = queue.name;
    this.queue = queue;
    this.repository = repository;
    this.settings = settings;
    this.#enqueue = hooks.enqueue;
    this.#onClose = hooks.onClose;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Queues a profile for this repository alone (the daemon's scrape path goes through the spool for all at once). */
  enqueue(profile: ScrapedProfile): Promise<void> {
    return this.#enqueue(profile);
  }

  stats(): { length: number; bytes: number; oldestAgeMs: number } {
    return this.queue.stats();
  }

  /**
   * Stops this handle: no new sends; sends in flight get until `deadlineMs`,
   * then are cut off (their profiles stay queued). Called again with a
   * shorter deadline, it cuts them off sooner.
   */
  close(deadlineMs: number): Promise<void> {
    this.closing = true;
    const at = Date.now() + Math.max(0, deadlineMs);
    if (at < this.#deadlineAt) {
      this.#deadlineAt = at;
      clearTimeout(this.#deadline);
      // held: whoever awaits close() waits for it (and no longer than the deadline)
      this.#deadline = setTimeout(() => this.#controller.abort(), Math.max(0, deadlineMs));
    }
    this.#closed ??= (async () => {
      this.#onClose(this);
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      clearTimeout(this.#deadline);
    })();
    return this.#closed;
  }
}
