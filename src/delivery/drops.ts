import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { LineLimiter } from '../log-limiter.js';
import type { SendResult } from '../repositories/repository.js';

/**
 * The metrics and log lines of what a queue finishes: each answer of its
 * repository, and each profile a bound drops. Lines of a kind are limited,
 * each saying how many were folded since the last one.
 */
export class DropLog {
  readonly #name: string;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  // one limiter per kind of line, so a count is of that kind only: a line of one event says how many were
  // folded before it (also_*); a trailing line, when the second is up, says how many were folded after it (folded)
  readonly #drops: Record<'full' | 'expired', LineLimiter>;
  readonly #rejects: LineLimiter;

  constructor(name: string, logger: Logger, metrics: Metrics) {
    this.#name = name;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#drops = {
      full: new LineLimiter((folded) => logger.warn({ repository: name, reason: 'full', folded }, `queue full (queue.max_size): ${folded} more of the oldest profiles dropped since the last line`)),
      expired: new LineLimiter((folded) => logger.warn({ repository: name, reason: 'expired', folded }, `${folded} more profiles older than queue.max_age dropped since the last line`)),
    };
    this.#rejects = new LineLimiter((folded) => logger.error({ repository: name, folded }, `repository refused ${folded} more profiles for good since the last line; they are dropped`));
  }

  /** The repository's answer to a send: `who` names the profile. */
  answered(result: Exclude<SendResult, { status: 'retryable' }>, who: Record<string, unknown>): void {
    const logger = this.#logger;
    const metrics = this.#metrics;
    const name = this.#name;
    switch (result.status) {
      case 'ok':
        metrics.profilesSent.inc({ repository: name, result: 'ok' });
        break;
      case 'skipped':
        metrics.profilesSent.inc({ repository: name, result: 'skipped' });
        logger.debug({ repository: name, ...who, reason: result.reason }, 'profile not sent');
        break;
      case 'permanent':
        metrics.profilesSent.inc({ repository: name, result: 'permanent' });
        metrics.queueDropped.inc({ repository: name, reason: 'rejected' });
        this.#rejects.emit((folded) => logger.error({ repository: name, ...who, answer: result.error, ...(folded ? { also_rejected: folded } : {}) }, 'repository refused the profile for good; it is dropped'));
        break;
    }
  }

  /** A profile a bound dropped: queue.max_size (`full`) or queue.max_age (`expired`). */
  dropped(reason: 'full' | 'expired', who: Record<string, unknown>, ageMs: number, queuedBytes: number): void {
    this.#metrics.queueDropped.inc({ repository: this.#name, reason });
    this.#drops[reason].emit((folded) =>
      this.#logger.warn(
        { repository: this.#name, reason, ...who, age_ms: ageMs, queued_bytes: queuedBytes, ...(folded ? { also_dropped: folded } : {}) },
        reason === 'full' ? 'queue full (queue.max_size): oldest profile dropped' : 'profile older than queue.max_age: dropped',
      ),
    );
  }

  /** An item that cannot be read back from its segment. */
  damaged(where: { segment: string | undefined; offset: number }, err: unknown): void {
    this.#metrics.queueDropped.inc({ repository: this.#name, reason: 'damaged' });
    this.#logger.error({ repository: this.#name, segment: where.segment, offset: where.offset, error: (err as Error).message }, 'queue item damaged on disk: dropped');
  }

  /** Logs what the limiters folded since their last line, before the process may exit. */
  flush(): void {
    for (const limiter of [this.#drops.full, this.#drops.expired, this.#rejects]) limiter.flush();
  }
}
