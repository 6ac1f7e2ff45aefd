import type { ScrapedProfile } from '../profiles/profile.js';
import type { Place, Prepared } from '../repositories/repository.js';
import type { QueueSegment } from './ack-log.js';

/** One queued profile. Kept small: a large backlog is mostly offsets. */
export interface Entry {
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

/** Who a log line is about: the profile when it is in memory, else where it lies. */
export function whoOfEntry(entry: Entry): Record<string, unknown> {
  const profile = entry.profile;
  return profile ? { service: profile.service, type: profile.type, instance: profile.labels['instance'] } : { segment: entry.seg?.id, offset: entry.offset };
}

/**
 * A queue's items in the order they were queued, with what they add up to:
 * count and bytes on disk, bytes held in memory. Finished items leave the
 * front as the queue moves on.
 */
export class Backlog {
  #entries: Entry[] = [];
  #head = 0;
  #count = 0;
  #bytes = 0;
  #cached = 0;

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of profiles held in memory. */
  get cached(): number {
    return this.#cached;
  }

  add(entry: Entry): void {
    this.#entries.push(entry);
    this.#count++;
    this.#bytes += entry.length;
    if (entry.profile) this.#cached += entry.profile.data.length;
  }

  /** The backlog read from disk goes first, then whatever arrived while it was read. */
  prepend(recovered: readonly Entry[]): void {
    this.#entries = recovered.concat(this.#entries.slice(this.#head));
    this.#head = 0;
    for (const e of recovered) {
      this.#count++;
      this.#bytes += e.length;
    }
  }

  /** The items not yet compacted away, first queued first (finished ones among them). */
  *items(): Generator<Entry> {
    for (let i = this.#head; i < this.#entries.length; i++) yield this.#entries[i] as Entry;
  }

  /** An item is done: it no longer counts, and its memory goes back. */
  finish(entry: Entry): void {
    entry.state = 'done';
    this.#count--;
    this.#bytes -= entry.length;
    if (entry.profile) this.#cached -= entry.profile.data.length;
    entry.profile = undefined;
    entry.prepared = undefined;
  }

  /** Gives back the memory of pending items that can be read back from disk. */
  release(): void {
    for (const e of this.items()) {
      if (e.state === 'pending' && e.seg && e.profile) {
        this.#cached -= e.profile.data.length;
        e.profile = undefined;
      }
    }
  }

  oldestAgeMs(): number {
    for (const e of this.items()) if (e.state !== 'done') return Math.max(0, Date.now() - e.at);
    return 0;
  }

  compact(): void {
    while (this.#head < this.#entries.length && (this.#entries[this.#head] as Entry).state === 'done') this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }
}
