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

/** What the transform stage makes of a profile: the profile to send, or why none is sent. */
export type Prepared = { readonly status: 'send'; readonly profile: ScrapedProfile } | { readonly status: 'skipped'; readonly reason: string };

/** A queued profile's fields without its bytes: what an order is decided from (a queue's backlog has only these). */
export type ProfileFields = Omit<ScrapedProfile, 'data'>;

/** Where a profile stands in its repository's order. */
export interface Place {
  /** Profiles with one key are sent one at a time, in the order of `time`. */
  readonly key: string;
  /** The time the repository files the profile under, ms since the epoch. */
  readonly time: number;
}

/**
 * A profile repository adapter: only "send this profile". Retries, timeouts
 * and queueing are wrappers composed around it (src/delivery/); the two
 * optional members are stages the delivery chain runs for the repositories
 * that have them.
 */
export interface Repository {
  /** Unique: names its queue, its metrics, and it across reloads. */
  readonly name: string;
  readonly kind: RepositoryKind;
  /** Sends one profile. Resolves with what happened; rejects only on bugs. */
  send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
  /**
   * The transform stage: what this repository makes of a profile before its
   * sends (Pyroscope: the delta against the previous scrape; OTLP conversion
   * goes here too). The queue calls it exactly once per profile, one at a
   * time in queue order, before the first send, and keeps the result for the
   * retries of that profile; a backlog read at start is transformed again.
   * It returns the profile to send or a reason to skip it. A throw is final:
   * the profile goes to the queue's quarantine/, and so does one the process
   * died transforming (found at the next start).
   */
  prepare?(profile: ScrapedProfile): Promise<Prepared>;
  /**
   * The order stage: set when the repository must get each key's profiles in
   * time order (profefe's index of one service's profiles assumes they
   * arrive in the order of the time it files them under). Its queue sends
   * one profile per key at a time, earliest first, and holds a profile while
   * a scrape of its key that started before it was queued still runs. Read
   * when the queue opens; called on a backlog's fields without their bytes.
   */
  placeOf?(profile: ProfileFields): Place;
}
