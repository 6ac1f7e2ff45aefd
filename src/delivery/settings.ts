import type { Logger } from 'pino';
import type { RepositoryEntry } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { repositoryCommonOf } from '../repositories/factory.js';
import type { ScrapesInFlight } from './order.js';
import type { BackoffPolicy } from './retry.js';

/** How one repository's queue behaves: its bounds, backoff and send timeout. */
export interface QueueSettings {
  /** Bytes of queued profiles; past this the oldest are dropped. */
  readonly maxBytes: number;
  /** A profile queued longer than this is dropped. */
  readonly maxAgeMs: number;
  readonly policy: BackoffPolicy;
  /** Per send attempt. */
  readonly timeoutMs: number;
  /** Sends in flight at once while the repository answers. */
  readonly parallelism: number;
}

/** Sends in flight per repository while it answers. */
const QUEUE_PARALLELISM = 32;

/** The queue settings of a config entry. */
export function queueSettingsOf(entry: RepositoryEntry): QueueSettings {
  const common = repositoryCommonOf(entry);
  return {
    maxBytes: common.queue.max_size,
    maxAgeMs: common.queue.max_age,
    policy: { initialMs: common.retry.initial_backoff, maxMs: common.retry.max_backoff },
    timeoutMs: common.timeout,
    parallelism: QUEUE_PARALLELISM,
  };
}

/** What every queue of a spool shares. */
export interface QueueDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Bytes of profiles a queue keeps in memory to send without reading them back (default 32 MiB). */
  readonly cacheBytes?: number;
  /** How often finished offsets are written down (default 1 s). */
  readonly ackFlushMs?: number;
  /** Bytes the `quarantine/` folder may hold before items given up on are no longer copied there (default 128 MiB). */
  readonly quarantineMaxBytes?: number;
  /** The scrapes running now: an ordered queue holds a service's profiles while an earlier scrape of it runs. */
  readonly scrapes?: ScrapesInFlight;
}

export const DEFAULT_CACHE_BYTES = 32 * 1024 ** 2;
export const DEFAULT_QUARANTINE_MAX_BYTES = 128 * 1024 ** 2;
export const DEFAULT_ACK_FLUSH_MS = 1000;
