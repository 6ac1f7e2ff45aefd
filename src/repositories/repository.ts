import type { RepositoryKind } from './registry.js';
import type { ScrapedProfile } from '../profiles/profile.js';

/**
 * What a send came to. Expected failures are results, not exceptions, so the
 * wrappers around an adapter (retry, timeout, queue) can act on them.
 */
export type SendResult =
  | { readonly status: 'ok' }
  /** The repository does not take this profile (profefe and allocs, empty profiles): nothing to retry. */
  | { readonly status: 'skipped'; readonly reason: string }
  | { readonly status: 'retryable'; readonly error: string; readonly retryAfterMs?: number | undefined }
  | { readonly status: 'permanent'; readonly error: string };

/**
 * A profile repository adapter: only "send this profile". Retries, timeouts
 * and queueing are wrappers composed around it.
 */
export interface Repository {
  /** Unique: names its queue, its metrics, and it across reloads. */
  readonly name: string;
  readonly kind: RepositoryKind;
  /** Sends one profile. Resolves with what happened; rejects only on bugs. */
  send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
