import type { ScrapedProfile } from '../profiles/profile.js';

/** What the status page's download of a last profile needs: its bytes and what names the file. */
export type HeldProfile = Pick<ScrapedProfile, 'targetId' | 'service' | 'type' | 'labels' | 'time' | 'data'>;

/** Where one key's last profile lies in the ring; overwritten in place at the key's next profile. */
interface Slot {
  /** Position of its first byte in the stream of everything written (the ring holds the last `capacity` bytes of it). */
  at: number;
  length: number;
  targetId: string;
  service: string;
  type: string;
  labels: ScrapedProfile['labels'];
  time: number;
}

/**
 * The last good profile of each target × type, for the status page's
 * download links, in one ring of a fixed byte budget: each profile is copied
 * in after the one before, and the ring's oldest bytes are overwritten
 * first, so the most recently taken stay. With 10k targets the budget holds
 * the last few thousand of them; a link whose profile was overwritten says
 * so, and the repository still has every profile.
 *
 * One buffer and one small record per key, both reused, rather than each
 * profile held as its own objects until the key's next scrape a minute
 * later: at thousands of scrapes a second those would all outlive the young
 * generation and die in the old one, and the old generation is what a
 * process at scale spends its memory on. The buffer is allocated at the
 * first profile and not filled: a host with a few targets touches a few of
 * its pages.
 */
export class LastProfiles {
  readonly #capacity: number;
  #ring: Buffer | undefined;
  /** Bytes written so far, the skipped ends of the ring included. */
  #head = 0;
  readonly #slots = new Map<string, Slot>();

  constructor(maxBytes: number) {
    this.#capacity = Math.max(0, Math.floor(maxBytes));
  }

  /** Bytes of the profiles held. */
  get bytes(): number {
    let total = 0;
    for (const slot of this.#slots.values()) if (this.#holds(slot)) total += slot.length;
    return total;
  }

  /** Profiles held. */
  get size(): number {
    let n = 0;
    for (const slot of this.#slots.values()) if (this.#holds(slot)) n++;
    return n;
  }

  set(key: string, profile: ScrapedProfile): void {
    const length = profile.data.length;
    if (length > this.#capacity || length === 0) {
      this.#slots.delete(key);
      return;
    }
    this.#ring ??= Buffer.allocUnsafeSlow(this.#capacity);
    let pos = this.#head % this.#capacity;
    if (pos + length > this.#capacity) {
      // a profile lies in one piece: skip the ring's end, it counts as written
      this.#head += this.#capacity - pos;
      pos = 0;
    }
    profile.data.copy(this.#ring, pos);
    const slot = this.#slots.get(key);
    if (slot) {
      slot.at = this.#head;
      slot.length = length;
      slot.targetId = profile.targetId;
      slot.service = profile.service;
      slot.type = profile.type;
      slot.labels = profile.labels;
      slot.time = profile.time;
    } else {
      this.#slots.set(key, { at: this.#head, length, targetId: profile.targetId, service: profile.service, type: profile.type, labels: profile.labels, time: profile.time });
    }
    this.#head += length;
  }

  /** A copy of the profile (the ring goes on being written while it is sent). */
  get(key: string): HeldProfile | undefined {
    const slot = this.#slots.get(key);
    if (!slot || !this.#ring || !this.#holds(slot)) return undefined;
    const pos = slot.at % this.#capacity;
    const data = Buffer.allocUnsafeSlow(slot.length);
    this.#ring.copy(data, 0, pos, pos + slot.length);
    return { targetId: slot.targetId, service: slot.service, type: slot.type, labels: slot.labels, time: slot.time, data };
  }

  has(key: string): boolean {
    const slot = this.#slots.get(key);
    return slot !== undefined && this.#holds(slot);
  }

  delete(key: string): void {
    this.#slots.delete(key);
  }

  /** Forgets every key not in `live` (targets that went away). */
  retain(live: ReadonlySet<string>): void {
    for (const key of [...this.#slots.keys()]) if (!live.has(key)) this.#slots.delete(key);
  }

  /** Its bytes have not been written over since: everything written since is within the capacity. */
  #holds(slot: Slot): boolean {
    return slot.at >= this.#head - this.#capacity;
  }
}
