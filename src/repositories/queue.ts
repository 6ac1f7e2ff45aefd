import { writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { fileExtensionOf } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { decodeProfile, readRecord, RecordError, scanSegment } from './queue-record.js';
import type { Outbox } from './outbox.js';
import type { Repository, SendResult } from './repository.js';
import { nextDelay, sendWithTimeout } from './retry.js';
import type { BackoffPolicy } from './retry.js';
import { LineLimiter } from '../log-limiter.js';
import { MAX_TIMEOUT_MS } from '../long-timeout.js';
import { SendOrder } from './order.js';
import type { Ordered, Place, ScrapesInFlight } from './order.js';

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
 * and keeps the result for the retries of that profile. A prepare that throws
 * is final: the profile goes to the queue's quarantine/, and so does one the
 * process died preparing (found at the next start).
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
  /** Its key and time, in a queue whose repository wants them in order. */
  readonly place: Place | undefined;
  /** Queue position (a backlog read from disk comes first): breaks ties of time. */
  readonly seq: number;
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
  /** Bytes the `quarantine/` folder may hold before items given up on are no longer copied there (default 128 MiB). */
  readonly quarantineMaxBytes?: number;
  /** The scrapes running now: an ordered queue holds a service's profiles while an earlier scrape of it runs. */
  readonly scrapes?: ScrapesInFlight;
}

const DEFAULT_CACHE_BYTES = 32 * 1024 ** 2;
const DEFAULT_QUARANTINE_MAX_BYTES = 128 * 1024 ** 2;
const DEFAULT_ACK_FLUSH_MS = 1000;
const SWEEP_EVERY_MS = 10_000;
/** Queue positions of a backlog read from disk: before those of profiles queued in this run, which count from 0. */
const BACKLOG_SEQ = -(2 ** 52);
const OUTAGE_LOG_EVERY_MS = 60_000;

export const segmentFile = (id: string): string => `${id}.seg`;
export const doneFile = (id: string): string => `${id}.done`;

/**
 * A queue folder's note of the item whose prepare() runs: `<segment> <offset>`,
 * blank when none does. Found at start naming an item, it means the previous
 * process died while preparing that item, perhaps because of it.
 */
export const PREPARING_FILE = 'preparing';
const PREPARING_BYTES = 64;
const BLANK_NOTE = Buffer.from(`${' '.repeat(PREPARING_BYTES - 1)}\n`, 'latin1');

/** The item a `preparing` note names; undefined when it is blank or not a note. */
export function parsePreparing(text: string): { segment: string; offset: number } | undefined {
  const m = /^([0-9A-Za-z_-]+) ([0-9]{1,10})$/.exec(text.trim());
  return m ? { segment: m[1] as string, offset: Number(m[2]) } : undefined;
}

/** Where a quarantined item went, or why no copy was kept: fields of its log line. */
type Kept = { readonly moved_to: string } | { readonly not_kept: string };

const COPY_PIECE = 1024 * 1024;

function whoOf(profile: ScrapedProfile | undefined): { service?: string; type?: string; instance?: string | undefined } {
  return profile ? { service: profile.service, type: profile.type, instance: profile.labels['instance'] } : {};
}

const INTERRUPTED = 'the daemon stopped while preparing this item (possibly a crash caused by it); moved to quarantine so the queue can go on';

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
  // one limiter per kind of line, so a count is of that kind only: a line of one event says how many were
  // folded before it (also_*); a trailing line, when the second is up, says how many were folded after it (folded)
  readonly #dropLogs = {
    full: new LineLimiter((folded) => this.#deps.logger.warn({ repository: this.name, reason: 'full', folded }, `queue full (queue.max_size): ${folded} more of the oldest profiles dropped since the last line`)),
    expired: new LineLimiter((folded) => this.#deps.logger.warn({ repository: this.name, reason: 'expired', folded }, `${folded} more profiles older than queue.max_age dropped since the last line`)),
  };
  readonly #rejectLog = new LineLimiter((folded) => this.#deps.logger.error({ repository: this.name, folded }, `repository refused ${folded} more profiles for good since the last line; they are dropped`));
  readonly #prepareLog = new LineLimiter((folded) =>
    this.#deps.logger.error({ repository: this.name, folded }, `the repository could not prepare ${folded} more queued profiles since the last line: moved to quarantine`),
  );
  readonly #noteLog = new LineLimiter((folded) =>
    this.#deps.logger.warn({ repository: this.name, file: join(this.dir, PREPARING_FILE), folded }, `could not note which profile is being prepared, ${folded} more times since the last line`),
  );
  /** The open `preparing` file, and whether it names an item now. */
  #note: FileHandle | undefined;
  #noteSynced = false;
  #noted = false;
  #preparing = false;
  /** Bytes in `quarantine/`, against quarantineMaxBytes. */
  #quarantined = 0;
  #memoryItems = 0;
  /** Set when the repository wants each key's profiles in time order (profefe). */
  readonly #ordering: Ordered | undefined;
  readonly #order: SendOrder<Entry> | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  #seq = 0;

  constructor(name: string, dir: string, deps: QueueDeps, ordering?: Ordered) {
    this.name = name;
    this.dir = dir;
    this.#deps = deps;
    this.#cacheLimit = deps.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP_EVERY_MS);
    this.#sweepTimer.unref();
    this.#ordering = ordering;
    if (ordering) {
      const order = new SendOrder<Entry>();
      this.#order = order;
      this.#unsubscribe = deps.scrapes?.onEnd((service) => {
        if (order.wake(service)) this.#pump();
      });
    }
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
    const quarantine = join(this.dir, 'quarantine');
    await mkdir(quarantine, { recursive: true });
    for (const n of await readdir(quarantine)) this.#quarantined += await stat(join(quarantine, n)).then((s) => s.size, () => 0);
    const names = await readdir(this.dir);
    const ids = names.filter((n) => n.endsWith('.seg')).map((n) => n.slice(0, -4)).sort();
    const known = new Set(ids);
    for (const n of names) {
      if (n.endsWith('.done') && !known.has(n.slice(0, -5))) await unlink(join(this.dir, n)).catch(() => undefined);
    }
    const interrupted = await this.#readNote();
    this.#recovering = this.#recover(ids, interrupted)
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

  /** The `preparing` note a previous process left (undefined: no file). */
  async #readNote(): Promise<{ item: { segment: string; offset: number } | undefined } | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, PREPARING_FILE), 'latin1');
    } catch {
      return undefined;
    }
    const item = parsePreparing(text);
    if (!item && text.trim() !== '') {
      this.#deps.logger.warn({ repository: this.name, file: join(this.dir, PREPARING_FILE) }, 'the note of the item being prepared is unreadable: ignored (an item that crashed the daemon while being prepared would be prepared once more)');
    }
    return { item };
  }

  async #recover(ids: string[], note: { item: { segment: string; offset: number } | undefined } | undefined): Promise<void> {
    const interrupted = note?.item;
    const recovered: Entry[] = [];
    let damaged = 0;
    let gaveUp = false;
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
          if (interrupted?.segment === id && interrupted.offset === e.offset) {
            await this.#quarantineInterrupted(file, id, e.offset, e.length);
            seg.acks.push(e.offset);
            gaveUp = true;
            return;
          }
          seg.pending++;
          recovered.push({ seg, offset: e.offset, length: e.length, at: e.meta.enqueuedAt, profile: undefined, prepared: undefined, state: 'pending', place: this.#ordering?.placeOf(e.meta), seq: BACKLOG_SEQ + recovered.length });
        });
      } catch (err) {
        damaged++;
        recovered.length = before;
        await fh?.close().catch(() => undefined);
        fh = undefined;
        const dest = join(this.dir, 'quarantine', segmentFile(id));
        this.#quarantined += await stat(path).then((s) => s.size, () => 0);
        await rename(path, dest).catch(() => undefined);
        await unlink(join(this.dir, doneFile(id))).catch(() => undefined);
        this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'damaged' });
        this.#deps.metrics.queueQuarantined.inc({ repository: this.name, reason: 'damaged' });
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
    if (note) {
      // written down before the note goes: a crash in between must not prepare the item again
      if (gaveUp) await this.#flushAcks();
      await this.#clearNote();
    }
    // backlog first, then whatever arrived while it was read
    const live = this.#entries.slice(this.#head);
    this.#entries = recovered.concat(live);
    this.#head = 0;
    for (const e of recovered) {
      this.#count++;
      this.#bytes += e.length;
      this.#order?.add(e);
    }
    if (recovered.length > 0 || damaged > 0) {
      this.#deps.logger.info({ repository: this.name, profiles: recovered.length, bytes: recovered.reduce((n, e) => n + e.length, 0), damaged }, 'queue backlog found on disk: sending it first');
    }
  }

  async #quarantineBytes(fh: FileHandle, id: string, offset: number, length: number, reason: string): Promise<void> {
    const dest = join(this.dir, 'quarantine', `${id}-${offset}.damaged`);
    const kept = await this.#keep(dest, length, async (out) => {
      // in pieces: a damaged stretch can be as long as the segment
      const piece = Buffer.allocUnsafe(Math.min(length, COPY_PIECE));
      for (let done = 0; done < length; ) {
        const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, length - done), offset + done);
        if (bytesRead <= 0) break;
        await out.write(piece, 0, bytesRead);
        done += bytesRead;
      }
    });
    this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'damaged' });
    this.#deps.metrics.queueQuarantined.inc({ repository: this.name, reason: 'damaged' });
    this.#deps.logger.error({ repository: this.name, segment: join(this.dir, segmentFile(id)), offset, bytes: length, reason, ...kept }, 'damaged queue item: its bytes are moved to quarantine; the items around it are kept');
  }

  /** At start: the item a previous process was preparing when it died. */
  async #quarantineInterrupted(fh: FileHandle, id: string, offset: number, length: number): Promise<void> {
    let profile: ScrapedProfile | undefined;
    try {
      profile = decodeProfile(await readRecord(fh, offset, length)).profile;
    } catch {
      // the scan just read it whole; should it fail now, the log line still says what was lost
    }
    const kept = await this.#keepItem(`${id}-${offset}`, profile, { reason: 'interrupted', error: INTERRUPTED, segment: id, offset });
    this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'interrupted' });
    this.#deps.metrics.queueQuarantined.inc({ repository: this.name, reason: 'interrupted' });
    this.#deps.logger.error(
      { repository: this.name, segment: join(this.dir, segmentFile(id)), offset, ...whoOf(profile), ...kept },
      'the daemon stopped while preparing this queued profile (possibly a crash caused by it): moved to quarantine so the queue can go on',
    );
  }

  /** A profile the repository could not prepare: it will not prepare it later either. */
  async #quarantineUnprepared(entry: Entry, profile: ScrapedProfile, error: string): Promise<void> {
    const segment = entry.seg?.id;
    const base = segment === undefined ? `memory-${entry.at}-${this.#memoryItems++}` : `${segment}-${entry.offset}`;
    const kept = await this.#keepItem(base, profile, { reason: 'prepare', error, segment, offset: entry.offset });
    this.#deps.metrics.queueDropped.inc({ repository: this.name, reason: 'prepare' });
    this.#deps.metrics.queueQuarantined.inc({ repository: this.name, reason: 'prepare' });
    this.#prepareLog.emit((folded) =>
      this.#deps.logger.error(
        { repository: this.name, segment: segment === undefined ? undefined : join(this.dir, segmentFile(segment)), offset: entry.offset, ...whoOf(profile), error, ...kept, ...(folded ? { also_quarantined: folded } : {}) },
        'the repository could not prepare a queued profile: moved to quarantine; the profiles behind it go on',
      ),
    );
    this.#finish(entry);
  }

  /** `<base>.pb.gz` (the profile as scraped; a trace: `.trace`) and `<base>.json` (what it is, and why it is here). */
  async #keepItem(base: string, profile: ScrapedProfile | undefined, why: { reason: string; error: string; segment: string | undefined; offset: number }): Promise<Kept> {
    const dir = join(this.dir, 'quarantine');
    const { data, ...meta } = profile ?? { data: undefined };
    const ext = profile ? fileExtensionOf(profile) : '.pb.gz';
    const json = Buffer.from(`${JSON.stringify({ repository: this.name, ...why, quarantined_at: new Date().toISOString(), profile: profile ? meta : undefined }, null, 2)}\n`);
    const kept = await this.#keep(join(dir, `${base}.json`), json.length + (data?.length ?? 0), async (out) => {
      await out.write(json);
      if (data) await writeFile(join(dir, `${base}${ext}`), data, { mode: 0o600 });
    });
    return 'moved_to' in kept && data ? { moved_to: join(dir, `${base}${ext}`) } : kept;
  }

  /** Writes a quarantine file unless the folder is at its bound. */
  async #keep(dest: string, bytes: number, write: (out: FileHandle) => Promise<void>): Promise<Kept> {
    const max = this.#deps.quarantineMaxBytes ?? DEFAULT_QUARANTINE_MAX_BYTES;
    if (this.#quarantined + bytes > max) {
      return { not_kept: `quarantine/ holds ${this.#quarantined} bytes and this would take it past its bound of ${max}: no copy kept (empty ${dirname(dest)} to keep copies again)` };
    }
    this.#quarantined += bytes;
    let out: FileHandle | undefined;
    try {
      out = await open(dest, 'w', 0o600);
      await write(out);
      return { moved_to: dest };
    } catch (err) {
      this.#quarantined -= bytes;
      return { not_kept: `could not write ${dest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    } finally {
      await out?.close().catch(() => undefined);
    }
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
    const entry: Entry = { seg, offset, length, at, profile: keep ? profile : undefined, prepared: undefined, state: 'pending', place: this.#ordering?.placeOf(profile), seq: this.#seq++ };
    this.#entries.push(entry);
    this.#count++;
    this.#bytes += length;
    this.#order?.add(entry);
    if (!keep && !seg) {
      // memory-only and no room: nothing to read it back from
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
    this.#unsubscribe?.();
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#timer);
    clearTimeout(this.#ackTimer);
    await this.#recovering;
    await Promise.all([...this.#removals]);
    await this.#flushAcks();
    // a prepare still running now never returned (the sends before close waited for every other): its note stays
    if (!this.#preparing) {
      await this.#note?.close().catch(() => undefined);
      this.#note = undefined;
    }
    for (const seg of this.#segments.values()) {
      await seg.doneFile?.close().catch(() => undefined);
      seg.doneFile = undefined;
      const reader = seg.reader;
      seg.reader = undefined;
      if (reader) await reader.then((fh) => fh.close()).catch(() => undefined);
    }
    // what the limiters folded since their last line, before the process may exit
    for (const limiter of [...Object.values(this.#dropLogs), this.#rejectLog, this.#prepareLog, this.#noteLog]) limiter.flush();
  }

  #pump(): void {
    const handle = this.#handle;
    if (!this.#ready || !handle || this.#stopped || handle.closing) return;
    const now = Date.now();
    if (this.#pausedUntil > now) {
      clearTimeout(this.#timer);
      // a pause past setTimeout's limit is waited in parts: #pump checks again
      this.#timer = setTimeout(() => this.#pump(), Math.min(this.#pausedUntil - now, MAX_TIMEOUT_MS));
      this.#timer.unref();
      return;
    }
    const limit = this.#failures > 0 ? 1 : handle.settings.parallelism;
    if (this.#order) {
      this.#pumpOrdered(this.#order, handle, limit, now);
      return;
    }
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

  /**
   * Each key's earliest profile, one send per key: a key waits while a
   * scrape of it that started before its earliest profile was queued still
   * runs, and is woken when a scrape of it ends.
   */
  #pumpOrdered(order: SendOrder<Entry>, handle: QueueHandle, limit: number, now: number): void {
    const scrapes = this.#deps.scrapes;
    for (const e of order.heads()) {
      if (handle.sending >= limit) break;
      if (now - e.at > handle.settings.maxAgeMs) {
        this.#drop(e, 'expired');
        continue;
      }
      const key = (e.place as Place).key;
      if (scrapes?.runsBefore(key, e.at)) {
        order.park(key);
        continue;
      }
      this.#start(e, handle);
    }
    this.#compact();
  }

  #start(entry: Entry, handle: QueueHandle): void {
    entry.state = 'sending';
    handle.sending++;
    this.#order?.take(entry);
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
        if (entry.place) this.#order?.done(entry.place.key);
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
    if (entry.prepared?.kind === kind) return entry.prepared.value;
    const value = await this.#prepare(entry, profile, preparer, entry.profile === undefined);
    if (value === undefined) return undefined;
    entry.prepared = { kind, value };
    return value;
  }

  /**
   * prepare() under a note in the `preparing` file, so that a process dying
   * in it (out of memory on a hostile profile, kill -9) does not prepare the
   * same item at every start: the next start quarantines it instead. The note
   * is a plain write, which the page cache keeps when the process dies; it is
   * also synced for items read back from disk, so that one that takes the
   * whole machine down is given up on after one reboot. A failure is final:
   * the item goes to quarantine and the queue goes on.
   */
  async #prepare(entry: Entry, profile: ScrapedProfile, preparer: Preparing, readBack: boolean): Promise<Prepared | undefined> {
    this.#preparing = true;
    try {
      await this.#writeNote(entry, readBack);
      try {
        return await preparer.prepare(profile);
      } catch (err) {
        if (entry.state === 'sending') await this.#quarantineUnprepared(entry, profile, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
        return undefined;
      }
    } finally {
      await this.#clearNote();
      this.#preparing = false;
    }
  }

  async #writeNote(entry: Entry, durable: boolean): Promise<void> {
    const seg = entry.seg;
    if (!seg) return;
    const note = Buffer.from(BLANK_NOTE);
    note.write(`${seg.id} ${entry.offset}`, 0, PREPARING_BYTES - 1, 'latin1');
    try {
      this.#note ??= await open(join(this.dir, PREPARING_FILE), 'w', 0o600);
      // 64 bytes into the page cache take microseconds; a trip through the thread pool costs more
      writeSync(this.#note.fd, note, 0, note.length, 0);
      this.#noted = true;
      if (durable) {
        await this.#note.datasync();
        if (!this.#noteSynced) {
          await syncDir(this.dir);
          this.#noteSynced = true;
        }
      }
    } catch (err) {
      this.#noteLog.emit((folded) =>
        this.#deps.logger.warn(
          { repository: this.name, file: join(this.dir, PREPARING_FILE), error: (err as NodeJS.ErrnoException).code ?? (err as Error).message, ...(folded ? { also_failed: folded } : {}) },
          'could not note which profile is being prepared: should preparing it crash the daemon, the next start would prepare it again',
        ),
      );
    }
  }

  /** Blanks the note (a plain write: a note left by a machine crash costs at most the one item it names). */
  async #clearNote(): Promise<void> {
    try {
      // opening it truncates it
      if (this.#note === undefined) this.#note = await open(join(this.dir, PREPARING_FILE), 'w', 0o600);
      else if (this.#noted) writeSync(this.#note.fd, BLANK_NOTE, 0, BLANK_NOTE.length, 0);
      this.#noted = false;
    } catch {
      // the next note overwrites it
    }
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
      this.#order?.add(entry);
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
    this.#dropLogs[reason].emit((folded) =>
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
    this.#order?.remove(entry);
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

/** Makes a folder's entries (a file created, linked or removed in it) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
