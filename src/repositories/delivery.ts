import type { ScrapedProfile } from '../profiles/profile.js';
import type { Outbox } from './outbox.js';

/**
 * Hands each scraped profile to every repository's outbox. The scrape path
 * awaits only the hand-over, never a repository.
 */
export interface Delivery {
  submit(profile: ScrapedProfile): Promise<void>;
  /** The outboxes, by repository name. */
  readonly outboxes: ReadonlyMap<string, Outbox>;
  /** Closes every outbox, each with the same deadline. */
  close(deadlineMs: number): Promise<void>;
}

export function createFanOut(outboxes: ReadonlyMap<string, Outbox>): Delivery {
  return {
    outboxes,
    async submit(profile: ScrapedProfile): Promise<void> {
      await Promise.all([...outboxes.values()].map((o) => o.enqueue(profile)));
    },
    async close(deadlineMs: number): Promise<void> {
      await Promise.all([...outboxes.values()].map((o) => o.close(deadlineMs)));
    },
  };
}
