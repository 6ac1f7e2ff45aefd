import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Repository } from './repository.js';
import { sendWithRetry } from './retry.js';
import type { BackoffPolicy } from './retry.js';

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

export interface MemoryOutboxOptions {
  readonly policy: BackoffPolicy;
  readonly timeoutMs: number;
  /** Attempts per profile before it is given up (logged and counted). */
  readonly maxAttempts: number;
  /** Sends in flight at once. */
  readonly parallelism: number;
  readonly maxBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

interface Item {
  profile: ScrapedProfile;
  at: number;
}

/**
 * An outbox in memory: bounded (the oldest go first when it is full), a few
 * senders in parallel, each send retried with backoff a few times. The scrape
 * loop only enqueues, so a slow repository never slows scraping.
 */
export function createMemoryOutbox(repository: Repository, options: MemoryOutboxOptions): Outbox {
  const name = repository.name;
  const items: Item[] = [];
  let bytes = 0;
  let active = 0;
  let closed = false;
  const controller = new AbortController();
  const running = new Set<Promise<void>>();
  const { metrics, logger } = options;

  const gauge = (): void => {
    metrics.queueLength.set({ repository: name }, items.length);
    metrics.queueBytes.set({ repository: name }, bytes);
  };

  const pump = (): void => {
    while (!closed && active < options.parallelism && items.length > 0) {
      const item = items.shift() as Item;
      bytes -= item.profile.data.length;
      active++;
      const p = deliver(item.profile).finally(() => {
        active--;
        running.delete(p);
        pump();
      });
      running.add(p);
    }
    gauge();
  };

  const deliver = async (profile: ScrapedProfile): Promise<void> => {
    const result = await sendWithRetry(repository, profile, {
      policy: options.policy,
      timeoutMs: options.timeoutMs,
      maxAttempts: options.maxAttempts,
      signal: controller.signal,
      onRetry: (r, attempt, delay) => {
        metrics.sendRetries.inc({ repository: name });
        logger.debug({ repository: name, attempt: attempt + 1, delay_ms: Math.round(delay), error: r.error }, 'send failed, will retry');
      },
    });
    const who = { repository: name, service: profile.service, type: profile.type, instance: profile.labels['instance'] };
    switch (result.status) {
      case 'ok':
        metrics.profilesSent.inc({ repository: name, result: 'ok' });
        break;
      case 'skipped':
        metrics.profilesSent.inc({ repository: name, result: 'skipped' });
        logger.debug({ ...who, reason: result.reason }, 'profile not sent');
        break;
      case 'permanent':
        metrics.profilesSent.inc({ repository: name, result: 'permanent' });
        logger.error({ ...who, error: result.error }, 'repository refused the profile; it is dropped');
        break;
      case 'retryable':
        metrics.profilesSent.inc({ repository: name, result: 'dropped' });
        logger.error({ ...who, attempts: options.maxAttempts, error: result.error }, 'profile dropped after its retries');
        break;
    }
  };

  return {
    name,
    async enqueue(profile: ScrapedProfile): Promise<void> {
      if (closed) {
        metrics.queueDropped.inc({ repository: name, reason: 'closed' });
        return;
      }
      items.push({ profile, at: Date.now() });
      bytes += profile.data.length;
      while (bytes > options.maxBytes && items.length > 1) {
        const old = items.shift() as Item;
        bytes -= old.profile.data.length;
        metrics.queueDropped.inc({ repository: name, reason: 'full' });
        logger.warn({ repository: name, service: old.profile.service, type: old.profile.type, instance: old.profile.labels['instance'] }, 'outbox full: oldest profile dropped');
      }
      pump();
    },
    stats() {
      return { length: items.length + active, bytes, oldestAgeMs: items[0] ? Date.now() - items[0].at : 0 };
    },
    async close(deadlineMs: number): Promise<void> {
      if (closed) return;
      // what is queued still goes out, within the deadline
      const done = (async () => {
        while (items.length > 0 || running.size > 0) {
          pump();
          await Promise.race([...running]);
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => { timer = setTimeout(r, deadlineMs); })]);
      clearTimeout(timer);
      closed = true;
      controller.abort();
      await Promise.allSettled([...running]);
      if (items.length > 0) {
        metrics.queueDropped.inc({ repository: name, reason: 'shutdown' }, items.length);
        logger.warn({ repository: name, profiles: items.length }, 'profiles not sent before shutdown');
      }
      items.length = 0;
      bytes = 0;
      gauge();
    },
  };
}
