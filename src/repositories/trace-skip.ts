import type { Logger } from 'pino';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Prepared, SendResult } from './repository.js';

/** Whether a repository has said it takes no traces; a repository may carry it over a reload. */
export interface TraceNotice {
  said: boolean;
}

/**
 * For a repository that holds pprof profiles only: what it answers for a Go
 * execution trace, skipped with `reason`, with `warning` logged the first
 * time (once per `notice`).
 */
export function traceSkipper(
  repository: string,
  logger: Logger | undefined,
  text: { readonly warning: string; readonly reason: string },
  notice: TraceNotice = { said: false },
): (profile: ScrapedProfile) => Prepared & SendResult {
  return (profile) => {
    if (!notice.said) {
      notice.said = true;
      logger?.warn({ repository, type: profile.type, target: profile.targetId }, text.warning);
    }
    return { status: 'skipped', reason: text.reason };
  };
}
