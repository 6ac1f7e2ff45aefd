import { CallSignal } from '../abort.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Repository, SendResult } from './repository.js';

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

/** Bounds one send attempt: the adapter sees an aborted signal after `timeoutMs`. */
export async function sendWithTimeout(repository: Repository, profile: ScrapedProfile, timeoutMs: number, signal: AbortSignal): Promise<SendResult> {
  const call = new CallSignal(signal, timeoutMs, () => new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  try {
    const result = await repository.send(profile, call.signal);
    if (result.status === 'retryable' && call.timedOut && !signal.aborted) {
      return { status: 'retryable', error: `no answer within the send timeout (${timeoutMs} ms): ${result.error}` };
    }
    return result;
  } finally {
    call.dispose();
  }
}
