import type { SendResult } from '../repositories/repository.js';

/**
 * What one repository's queue tells of its delivery, read-only: the status
 * page's repositories panel, `/status` and `/-/healthy` read it. Times are
 * ms since the epoch.
 */
export interface DeliveryStatus {
  readonly name: string;
  readonly kind: string;
  /** Profiles waiting, their bytes on disk, and how long the oldest has waited. */
  readonly queued: number;
  readonly queuedBytes: number;
  readonly oldestAgeMs: number;
  /** The last profile the repository took; undefined while it has taken none since the daemon started. */
  readonly lastSuccessAt: number | undefined;
  /** The last failed send, retryable or not. */
  readonly lastError: { readonly at: number; readonly error: string; readonly permanent: boolean } | undefined;
  /** Retryable failures in a row now (0: the repository answers). */
  readonly failedAttempts: number;
  /** While the queue backs off (its backoff or the repository's Retry-After): when it sends again. */
  readonly retryAt: number | undefined;
  /** When this queue started sending in this run: a stall is measured from here when nothing was taken yet. */
  readonly since: number;
}

/** The answers of one queue's repository as the status shows them: last success and last error, one record for the queue's life. */
export class DeliveryRecord {
  readonly since = Date.now();
  #lastSuccessAt: number | undefined;
  #errorAt = 0;
  #error: string | undefined;
  #permanent = false;

  get lastSuccessAt(): number | undefined {
    return this.#lastSuccessAt;
  }

  get lastError(): DeliveryStatus['lastError'] {
    return this.#error === undefined ? undefined : { at: this.#errorAt, error: this.#error, permanent: this.#permanent };
  }

  /** An answer of the repository (a retryable one only when it counted: not one cut short by a reload or a stop). */
  answered(result: SendResult): void {
    if (result.status === 'ok') {
      this.#lastSuccessAt = Date.now();
    } else if (result.status === 'retryable' || result.status === 'permanent') {
      this.#errorAt = Date.now();
      this.#error = result.error;
      this.#permanent = result.status === 'permanent';
    }
  }
}
