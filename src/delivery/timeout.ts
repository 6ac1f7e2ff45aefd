import { CallSignal } from '../abort.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Repository, SendResult } from '../repositories/repository.js';

/**
 * The timeout stage, innermost around the adapter: one send attempt is
 * bounded, the adapter sees an aborted signal after `timeoutMs`.
 */
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
