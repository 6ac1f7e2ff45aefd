import type { ScrapedProfile } from '../profiles/profile.js';

/** Profiles on their way to one repository. */
export interface Outbox {
  readonly name: string;
  /** Takes a profile. Resolves once the outbox holds it; never waits for the repository. */
  enqueue(profile: ScrapedProfile): Promise<void>;
  /** What waits: count, bytes, age of the oldest in ms. */
  stats(): { length: number; bytes: number; oldestAgeMs: number };
  /** Stops sending; sends in flight get until `deadlineMs`. Idempotent. */
  close(deadlineMs: number): Promise<void>;
}
