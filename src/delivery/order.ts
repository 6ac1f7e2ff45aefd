import type { Place } from '../repositories/repository.js';

/**
 * The scrapes running now, by service, from the request until the profile is
 * queued (or the scrape failed). An ordered queue holds a profile while a
 * scrape of its service that started before it was queued still runs: a CPU
 * profile is dated at the start of its window but queued at its end, after
 * the heap profiles taken during it.
 */
export class ScrapesInFlight {
  readonly #starts = new Map<string, number[]>();
  readonly #listeners = new Set<(service: string) => void>();

  /** A scrape of `service` starts; call the function returned when its profile is queued or it failed (more calls do nothing). */
  begin(service: string, startMs = Date.now()): () => void {
    let list = this.#starts.get(service);
    if (!list) this.#starts.set(service, (list = []));
    list.push(startMs);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const l = this.#starts.get(service);
      if (!l) return;
      const i = l.indexOf(startMs);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.#starts.delete(service);
      for (const f of this.#listeners) f(service);
    };
  }

  /** Whether a scrape of `service` that started before `timeMs` still runs. */
  runsBefore(service: string, timeMs: number): boolean {
    const l = this.#starts.get(service);
    if (!l) return false;
    for (const s of l) if (s < timeMs) return true;
    return false;
  }

  /** Calls `f` with the service of each scrape that ends; returns the unsubscribe. */
  onEnd(f: (service: string) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }
}

/** What SendOrder needs of a queued item. */
export interface OrderedItem {
  readonly place: Place | undefined;
  /** Position in the queue: breaks ties of time, oldest first. */
  readonly seq: number;
}

/**
 * The pending items of an ordered queue, per key, earliest first; and the
 * keys that may send next: those with an item waiting and none in flight.
 * Keys take turns in the order they became ready.
 */
export class SendOrder<T extends OrderedItem> {
  readonly #pending = new Map<string, T[]>();
  readonly #busy = new Set<string>();
  readonly #ready = new Set<string>();

  /** An item to send (new, or back after a failed attempt). */
  add(item: T): void {
    const place = item.place;
    if (!place) return;
    let list = this.#pending.get(place.key);
    if (!list) this.#pending.set(place.key, (list = []));
    // mostly an append: search from the end
    let i = list.length;
    while (i > 0 && before(item, list[i - 1] as T)) i--;
    list.splice(i, 0, item);
    if (!this.#busy.has(place.key)) this.#ready.add(place.key);
  }

  /** An item leaves without being sent (dropped by a bound). */
  remove(item: T): void {
    const place = item.place;
    if (!place) return;
    const list = this.#pending.get(place.key);
    const i = list ? list.indexOf(item) : -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) {
      this.#pending.delete(place.key);
      this.#ready.delete(place.key);
    }
  }

  /** The item its key sends now: out of the pending list, and its key busy until done(). */
  take(item: T): void {
    this.remove(item);
    const key = item.place?.key;
    if (key === undefined) return;
    this.#busy.add(key);
    this.#ready.delete(key);
  }

  /** The send of `key`'s item is over (whatever came of it; a retry is add()ed first). */
  done(key: string): void {
    this.#busy.delete(key);
    if (this.#pending.has(key)) this.#ready.add(key);
  }

  /** `key` waits (for a scrape still running): it is out of turn until wake(). */
  park(key: string): void {
    this.#ready.delete(key);
  }

  /** `key` may send again, if it has something to send. */
  wake(key: string): boolean {
    if (this.#busy.has(key) || !this.#pending.has(key)) return false;
    this.#ready.add(key);
    return true;
  }

  /**
   * The first item of each key that may send, in turn order, read as the
   * caller goes (it stops when its sends are full). take(), park() and
   * remove() of the item at hand are safe; keys that become ready meanwhile
   * come at the end.
   */
  *heads(): Generator<T> {
    for (const key of this.#ready) {
      const first = this.#pending.get(key)?.[0];
      if (first) yield first;
      else this.#ready.delete(key);
    }
  }

  /** Keys with items waiting. */
  get keys(): number {
    return this.#pending.size;
  }
}

function before(a: OrderedItem, b: OrderedItem): boolean {
  const ta = a.place?.time ?? 0;
  const tb = b.place?.time ?? 0;
  return ta < tb || (ta === tb && a.seq < b.seq);
}
