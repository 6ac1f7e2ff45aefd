import { LruMap } from '../lru.js';
import type { ScrapedProfile } from '../profiles/profile.js';

/**
 * The last good profile of each target × type, for the status page's
 * download links, within a fixed byte budget: the most recently taken stay,
 * the oldest go first. With 10k targets the budget holds a few hundred of
 * them; a link whose profile was evicted says so, and the repository still
 * has every profile.
 */
export class LastProfiles {
  readonly #maxBytes: number;
  readonly #entries: LruMap<string, ScrapedProfile>;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#entries = new LruMap(maxBytes, (profile) => profile.data.length);
  }

  get bytes(): number {
    return this.#entries.bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  set(key: string, profile: ScrapedProfile): void {
    this.delete(key);
    if (profile.data.length > this.#maxBytes) return;
    // a slice of a larger network buffer would pin all of it: keep a copy of just the slice
    const whole = profile.data.byteLength === profile.data.buffer.byteLength;
    this.#entries.set(key, whole ? profile : { ...profile, data: ownCopy(profile.data) });
  }

  get(key: string): ScrapedProfile | undefined {
    return this.#entries.get(key);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Forgets every key not in `live` (targets that went away). */
  retain(live: ReadonlySet<string>): void {
    for (const key of [...this.#entries.keys()]) if (!live.has(key)) this.delete(key);
  }
}

/** A copy in its own memory (Buffer.from would take a slice of the shared pool). */
function ownCopy(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}
