/**
 * A map within a byte budget that forgets its least recently set entries
 * first. Reading an entry does not make it recent: its owners set an entry
 * again each time they use it.
 */
export class LruMap<K, V> {
  // Map order is insertion order: setting a key again moves it to the end, so the first is the least recent
  readonly #entries = new Map<K, { readonly value: V; readonly bytes: number }>();
  readonly #maxBytes: number;
  readonly #sizeOf: (value: V, key: K) => number;
  #bytes = 0;

  constructor(maxBytes: number, sizeOf: (value: V, key: K) => number) {
    this.#maxBytes = maxBytes;
    this.#sizeOf = sizeOf;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Bytes of all entries, as sizeOf counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  keys(): IterableIterator<K> {
    return this.#entries.keys();
  }

  /**
   * Makes `key` the most recent entry, then forgets the least recent ones,
   * oldest first, while they are `stale` or the map is over its budget; it
   * stops at the first it keeps, and never forgets the entry just set (alone,
   * it may be over the budget). Returns how many it forgot for the budget.
   */
  set(key: K, value: V, stale?: (value: V, key: K) => boolean): number {
    this.delete(key);
    const bytes = this.#sizeOf(value, key);
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    let evicted = 0;
    for (const [k, e] of this.#entries) {
      if (k === key) break;
      const isStale = stale?.(e.value, k) ?? false;
      if (!isStale && this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
      if (!isStale) evicted++;
    }
    return evicted;
  }

  delete(key: K): boolean {
    const old = this.#entries.get(key);
    if (!old) return false;
    this.#entries.delete(key);
    this.#bytes -= old.bytes;
    return true;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
