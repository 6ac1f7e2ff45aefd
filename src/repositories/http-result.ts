import { redactUrl } from '../redact.js';
import type { SendResult } from './repository.js';

const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * The rule every repository shares: 2xx is done; 408, 429 and 5xx are worth
 * another try (after Retry-After when given); any other 4xx is permanent.
 */
export function resultOfStatus(status: number, body: string, retryAfter: string | undefined, now = Date.now()): SendResult {
  if (status >= 200 && status < 300) return { status: 'ok' };
  // a proxy's error page may quote the URL it was asked for
  const detail = redactUrl(`HTTP ${status}${body ? `: ${body.trim().replace(/\s+/g, ' ').slice(0, 300)}` : ''}`);
  if (status === 408 || status === 429 || status >= 500) {
    return { status: 'retryable', error: detail, retryAfterMs: parseRetryAfter(retryAfter, now) };
  }
  return { status: 'permanent', error: detail };
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/**
 * Network-level failures (refused, reset, DNS, TLS, timeout) are worth another
 * try. The text goes to the log at every retry: URL credentials are masked.
 */
export function resultOfError(err: unknown, what: string): SendResult {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.cause?.code ?? e.code ?? e.name;
  const message = e.cause?.message ?? e.message ?? String(err);
  return { status: 'retryable', error: redactUrl(`${what}: ${code ? `${code}: ` : ''}${message}`) };
}
