import type { Logger } from 'pino';
import type { SendResult } from '../repositories/repository.js';

export interface BackoffPolicy {
  /** First wait, ms. */
  readonly initialMs: number;
  /** Longest wait, ms. */
  readonly maxMs: number;
}

/** Exponential backoff with full jitter: a random wait up to initial × 2^attempt, capped. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
  return Math.max(policy.initialMs / 2, ceiling * random());
}

/** How long to wait before the next attempt: the repository's Retry-After when it gave one. */
export function nextDelay(result: SendResult, policy: BackoffPolicy, attempt: number): number {
  if (result.status === 'retryable' && result.retryAfterMs !== undefined) return Math.min(Math.max(result.retryAfterMs, 0), Math.max(policy.maxMs, result.retryAfterMs));
  return backoffDelay(policy, attempt);
}

/** What waits in the queue, for the outage lines. */
export interface Queued {
  readonly count: number;
  readonly bytes: number;
}

const OUTAGE_LOG_EVERY_MS = 60_000;

/**
 * The retry stage of one queue. After a retryable failure the whole queue
 * backs off (exponential with jitter, or the repository's Retry-After) and
 * probes with one send until one succeeds; an outage is logged when it
 * starts, then at most once a minute, and when it ends.
 */
export class Retry {
  readonly #name: string;
  readonly #logger: Logger;
  #failures = 0;
  /** Bumped with each counted failure: sends that started before it do not count again. */
  #round = 0;
  #failingSince = 0;
  #lastOutageLog = 0;
  #pausedUntil = 0;

  constructor(name: string, logger: Logger) {
    this.#name = name;
    this.#logger = logger;
  }

  /** The round a send starting now belongs to. */
  get round(): number {
    return this.#round;
  }

  /** Retryable failures in a row now (0: the repository answers). */
  get failures(): number {
    return this.#failures;
  }

  /** When sending may go on, ms since the epoch (0: not paused). */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Sends in flight at once: all of `parallelism` while the repository answers, one probe while it does not. */
  limit(parallelism: number): number {
    return this.#failures > 0 ? 1 : parallelism;
  }

  /** A new handle sends: it starts without the old one's backoff. */
  reset(): void {
    this.#failures = 0;
    this.#pausedUntil = 0;
  }

  /** A retryable answer to a send of `round`: sends that were in flight together fail together, so one failure per round backs off once. */
  failed(result: Extract<SendResult, { status: 'retryable' }>, policy: BackoffPolicy, round: number, queued: Queued): void {
    if (round !== this.#round) return;
    this.#round++;
    const delay = nextDelay(result, policy, this.#failures);
    this.#failures++;
    this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + delay);
    const now = Date.now();
    if (this.#failures === 1) this.#failingSince = now;
    const name = this.#name;
    if (this.#failures === 1 || now - this.#lastOutageLog >= OUTAGE_LOG_EVERY_MS) {
      this.#lastOutageLog = now;
      this.#logger.warn({ repository: name, error: result.error, attempts: this.#failures, retry_in_ms: Math.round(delay), queued: queued.count, queued_bytes: queued.bytes }, 'repository did not take a profile; retrying with backoff, profiles wait on disk');
    } else {
      this.#logger.debug({ repository: name, error: result.error, attempts: this.#failures, retry_in_ms: Math.round(delay) }, 'send failed, will retry');
    }
  }

  /** The repository answered (ok, skipped or permanent): an outage, if any, is over. `queued` counts the profile answered. */
  answered(queued: Queued): void {
    if (this.#failures === 0) return;
    this.#logger.info({ repository: this.#name, failed_attempts: this.#failures, outage_ms: Date.now() - this.#failingSince, queued: queued.count - 1 }, 'repository takes profiles again');
    this.#failures = 0;
    this.#pausedUntil = 0;
    this.#round++;
  }
}
