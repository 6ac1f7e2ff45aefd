// Over 300 lines: the queue loop is one state machine (an item pending,
// sending, done; a handle in use, detached; the bounds), and splitting it
// would spread that state over files. Everything around the loop has its own
// module: storage (ack-log.ts, backlog.ts, recover.ts, quarantine.ts,
// prepare-note.ts), the stages (transform.ts, retry.ts, timeout.ts), and the
// lines and metrics of drops (drops.ts).

import { MAX_TIMEOUT_MS } from '../long-timeout.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Place, ProfileFields, SendResult } from '../repositories/repository.js';
import { AckLog } from './ack-log.js';
import { Backlog, whoOfEntry } from './backlog.js';
import type { Entry } from './backlog.js';
import { DeliveryRecord } from './delivery-status.js';
import type { DeliveryStatus } from './delivery-status.js';
import { DropLog } from './drops.js';
import type { QueueHandle } from './handle.js';
import { SendOrder } from './order.js';
import { PrepareNote } from './prepare-note.js';
import { Quarantine } from './quarantine.js';
import { decodeProfile, RecordError } from './record.js';
import { listSegments, readBacklog } from './recover.js';
import { Retry } from './retry.js';
import { DEFAULT_ACK_FLUSH_MS, DEFAULT_CACHE_BYTES, DEFAULT_QUARANTINE_MAX_BYTES } from './settings.js';
import type { QueueDeps } from './settings.js';
import { sendWithTimeout } from './timeout.js';
import { TransformStage } from './transform.js';

const SWEEP_EVERY_MS = 10_000;

/**
 * One repository's queue, the outermost stage of its delivery chain
 * queue(retry(timeout(adapter))): the profiles it still has to take, in the
 * order they were scraped. The profile bytes live once in the shared spool
 * segments; this queue's folder holds a hard link to each segment it still
 * needs and a `.done` file per segment with the offsets it has finished
 * (ack-log.ts). An item is finished only when the repository took it,
 * refused it for good, or a bound dropped it.
 *
 * Sending: up to `parallelism` in flight while the repository answers; each
 * profile goes through the repository's transform stage once (transform.ts)
 * and each attempt through the timeout stage (timeout.ts); a retryable
 * failure backs the whole queue off (retry.ts).
 */
export class DurableQueue {
  readonly name: string;
  readonly dir: string;
  readonly #deps: QueueDeps;
  readonly #cacheLimit: number;
  readonly #backlog = new Backlog();
  readonly #acks: AckLog;
  readonly #note: PrepareNote;
  readonly #quarantine: Quarantine;
  readonly #transform: TransformStage;
  readonly #retry: Retry;
  readonly #log: DropLog;
  readonly #record = new DeliveryRecord();
  #handle: QueueHandle | undefined;
  #ready = false;
  #recovering: Promise<void> | undefined;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #sweepTimer: NodeJS.Timeout;
  readonly #inFlight = new Set<Promise<void>>();
  /** The repository's order stage: set when it wants each key's profiles in time order (profefe). */
  readonly #placeOf: ((profile: ProfileFields) => Place) | undefined;
  readonly #order: SendOrder<Entry> | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  #seq = 0;

  constructor(name: string, dir: string, deps: QueueDeps, placeOf?: (profile: ProfileFields) => Place) {
    this.name = name;
    this.dir = dir;
    this.#deps = deps;
    this.#cacheLimit = deps.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.#acks = new AckLog(dir, name, deps.logger, deps.ackFlushMs ?? DEFAULT_ACK_FLUSH_MS);
    this.#note = new PrepareNote(dir, name, deps.logger);
    this.#quarantine = new Quarantine(dir, name, deps, deps.quarantineMaxBytes ?? DEFAULT_QUARANTINE_MAX_BYTES);
    this.#transform = new TransformStage({
      note: this.#note,
      quarantine: this.#quarantine,
      read: (entry) => this.#read(entry),
      damaged: (entry, err) => {
        this.#log.damaged({ segment: entry.seg?.id, offset: entry.offset }, err);
        this.#finish(entry);
      },
      finish: (entry) => this.#finish(entry),
    });
    this.#retry = new Retry(name, deps.logger);
    this.#log = new DropLog(name, deps.logger, deps.metrics);
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP_EVERY_MS);
    this.#sweepTimer.unref();
    this.#placeOf = placeOf;
    if (placeOf) {
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
    await this.#quarantine.open();
    const ids = await listSegments(this.dir);
    const interrupted = await this.#note.read();
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

  async #recover(ids: string[], note: Awaited<ReturnType<PrepareNote['read']>>): Promise<void> {
    const ctx = { dir: this.dir, name: this.name, logger: this.#deps.logger, acks: this.#acks, quarantine: this.#quarantine, placeOf: this.#placeOf };
    const { entries, damaged, gaveUp } = await readBacklog(ctx, ids, note?.item);
    if (note) {
      // written down before the note goes: a crash in between must not prepare the item again
      if (gaveUp) await this.#acks.flush();
      await this.#note.clear();
    }
    this.#backlog.prepend(entries);
    for (const e of entries) this.#order?.add(e);
    if (entries.length > 0 || damaged > 0) {
      this.#deps.logger.info({ repository: this.name, profiles: entries.length, bytes: entries.reduce((n, e) => n + e.length, 0), damaged }, 'queue backlog found on disk: sending it first');
    }
  }

  /** A new spool segment now linked into this queue's folder. */
  addSegment(id: string): void {
    this.#acks.add(id);
  }

  /** The spool appends no more to this segment: once its items are done, its link can go. */
  seal(id: string): void {
    this.#acks.seal(id);
  }

  /** A profile made durable in segment `segmentId` at `offset` (no segment: held in memory only). */
  push(segmentId: string | undefined, offset: number, length: number, profile: ScrapedProfile, at: number): void {
    const seg = segmentId === undefined ? undefined : this.#acks.get(segmentId);
    if (seg) seg.pending++;
    // memory-only: nothing to read it back from, so it is held whatever the cache holds
    const hold = !seg || (!this.#stopped && this.#backlog.cached + profile.data.length <= this.#cacheLimit);
    const entry: Entry = { seg, offset, length, at, profile: hold ? profile : undefined, prepared: undefined, state: 'pending', place: this.#placeOf?.(profile), seq: this.#seq++ };
    this.#backlog.add(entry);
    this.#order?.add(entry);
    this.#enforceBounds();
    this.#pump();
  }

  stats(): { length: number; bytes: number; oldestAgeMs: number } {
    return { length: this.#backlog.count, bytes: this.#backlog.bytes, oldestAgeMs: this.#backlog.oldestAgeMs() };
  }

  /** Its delivery as the status page and /-/healthy show it; `kind` is the repository's. */
  status(kind: string): DeliveryStatus {
    const pausedUntil = this.#retry.pausedUntil;
    return {
      name: this.name,
      kind,
      queued: this.#backlog.count,
      queuedBytes: this.#backlog.bytes,
      oldestAgeMs: this.#backlog.oldestAgeMs(),
      lastSuccessAt: this.#record.lastSuccessAt,
      lastError: this.#record.lastError,
      failedAttempts: this.#retry.failures,
      retryAt: pausedUntil > Date.now() ? pausedUntil : undefined,
      since: this.#record.since,
    };
  }

  /** Makes `handle` the one that sends; the previous one (if any) is retired by its owner. */
  use(handle: QueueHandle): void {
    this.#handle = handle;
    this.#stopped = false;
    this.#retry.reset();
    this.#pump();
  }

  /** No handle sends any more (the repository left the config, or the daemon stops). Items stay on disk. */
  detach(handle: QueueHandle): void {
    if (this.#handle !== handle) return;
    this.#handle = undefined;
    this.#stopped = true;
    clearTimeout(this.#timer);
    // memory goes back; the disk still has every item
    this.#backlog.release();
  }

  /** Writes down what is finished and closes files. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#timer);
    this.#acks.stop();
    await this.#recovering;
    await this.#acks.close();
    await this.#note.close();
    await this.#acks.closeFiles();
    // what the limiters folded since their last line, before the process may exit
    this.#log.flush();
    this.#quarantine.flush();
  }

  #pump(): void {
    const handle = this.#handle;
    if (!this.#ready || !handle || this.#stopped || handle.closing) return;
    const now = Date.now();
    const pausedUntil = this.#retry.pausedUntil;
    if (pausedUntil > now) {
      clearTimeout(this.#timer);
      // a pause past setTimeout's limit is waited in parts: #pump checks again
      this.#timer = setTimeout(() => this.#pump(), Math.min(pausedUntil - now, MAX_TIMEOUT_MS));
      this.#timer.unref();
      return;
    }
    const limit = this.#retry.limit(handle.settings.parallelism);
    if (this.#order) {
      this.#pumpOrdered(this.#order, handle, limit, now);
      return;
    }
    for (const e of this.#backlog.items()) {
      if (handle.sending >= limit) break;
      if (e.state !== 'pending') continue;
      if (now - e.at > handle.settings.maxAgeMs) {
        this.#drop(e, 'expired');
        continue;
      }
      this.#start(e, handle);
    }
    this.#backlog.compact();
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
    this.#backlog.compact();
  }

  /** One item through the chain: transform (once), then timeout around the adapter; the answer settles it. */
  #start(entry: Entry, handle: QueueHandle): void {
    entry.state = 'sending';
    handle.sending++;
    this.#order?.take(entry);
    const round = this.#retry.round;
    const p = this.#transform
      .load(entry, handle.repository)
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

  async #read(entry: Entry): Promise<ScrapedProfile> {
    const seg = entry.seg;
    if (!seg) throw new RecordError('held in memory only, and gone');
    return decodeProfile(await this.#acks.read(seg, entry.offset, entry.length)).profile;
  }

  #settle(entry: Entry, handle: QueueHandle, result: SendResult, round: number): void {
    if (entry.state !== 'sending') return;
    const queued = { count: this.#backlog.count, bytes: this.#backlog.bytes };
    if (result.status === 'retryable') {
      entry.state = 'pending';
      this.#order?.add(entry);
      // a send cut short by a retired or closing handle is not the repository's fault
      if (handle !== this.#handle || handle.closing || this.#stopped) return;
      this.#record.answered(result);
      this.#deps.metrics.sendRetries.inc({ repository: this.name });
      this.#retry.failed(result, handle.settings.policy, round, queued);
      return;
    }
    if (handle === this.#handle) this.#retry.answered(queued);
    this.#record.answered(result);
    this.#log.answered(result, whoOfEntry(entry));
    this.#finish(entry);
  }

  #drop(entry: Entry, reason: 'full' | 'expired'): void {
    this.#log.dropped(reason, whoOfEntry(entry), Date.now() - entry.at, this.#backlog.bytes);
    this.#finish(entry);
  }

  #finish(entry: Entry): void {
    if (entry.state === 'done') return;
    this.#order?.remove(entry);
    const seg = entry.seg;
    this.#backlog.finish(entry);
    if (seg) this.#acks.finished(seg, entry.offset);
  }

  #enforceBounds(): void {
    const maxBytes = this.#handle?.settings.maxBytes;
    if (maxBytes === undefined || !this.#ready) return;
    for (const e of this.#backlog.items()) {
      if (this.#backlog.bytes <= maxBytes) break;
      if (e.state === 'pending') this.#drop(e, 'full');
    }
    this.#backlog.compact();
  }

  #sweep(): void {
    const handle = this.#handle;
    if (!handle || !this.#ready) return;
    const now = Date.now();
    for (const e of this.#backlog.items()) {
      if (now - e.at <= handle.settings.maxAgeMs) break;
      if (e.state === 'pending') this.#drop(e, 'expired');
    }
    this.#backlog.compact();
  }
}
