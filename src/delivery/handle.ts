import type { ScrapedProfile } from '../profiles/profile.js';
import type { Repository } from '../repositories/repository.js';
import type { DeliveryStatus } from './delivery-status.js';
import type { DurableQueue } from './queue.js';
import type { QueueSettings } from './settings.js';

/**
 * A repository bound to its queue: what the daemon holds of each
 * repository. The queue outlives it: a reload that changes a repository's
 * settings binds a new handle to the same queue, and nothing queued moves.
 */
export class QueueHandle {
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

  /** Queues a profile for this repository alone (the daemon's scrape path goes through the spool for all at once). Resolves once it is durable. */
  enqueue(profile: ScrapedProfile): Promise<void> {
    return this.#enqueue(profile);
  }

  /** What waits: count, bytes, age of the oldest in ms. */
  stats(): { length: number; bytes: number; oldestAgeMs: number } {
    return this.queue.stats();
  }

  /** Its delivery, read-only, for the status page and /-/healthy. */
  status(): DeliveryStatus {
    return this.queue.status(this.repository.kind);
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
