import { MAX_TIMEOUT_MS } from './long-timeout.js';

/**
 * The calls under one parent signal share a single listener on it: a queue
 * sending 32 profiles at once, or the scrapes under the daemon's signal, would
 * otherwise put one listener each on the same signal (Node warns past 10).
 */
interface Followers {
  readonly calls: Set<() => void>;
  readonly onAbort: () => void;
}
const followed = new WeakMap<AbortSignal, Followers>();

function follow(parent: AbortSignal, onAbort: () => void): void {
  let f = followed.get(parent);
  if (!f) {
    const calls = new Set<() => void>();
    f = {
      calls,
      onAbort: () => {
        followed.delete(parent);
        for (const call of calls) call();
        calls.clear();
      },
    };
    followed.set(parent, f);
    parent.addEventListener('abort', f.onAbort, { once: true });
  }
  f.calls.add(onAbort);
}

function unfollow(parent: AbortSignal, onAbort: () => void): void {
  const f = followed.get(parent);
  if (!f?.calls.delete(onAbort) || f.calls.size > 0) return;
  followed.delete(parent);
  parent.removeEventListener('abort', f.onAbort);
}

/**
 * One call's signal, under a long-lived one: it aborts when the parent does
 * (with the parent's reason), after `timeoutMs` when one is given, or on
 * `abort()`. One controller and one timer per call, let go by `dispose()`;
 * the parent carries one listener however many calls run under it.
 * AbortSignal.any and AbortSignal.timeout would keep a signal per call alive
 * on the parent, and they cost more on the scrape path.
 */
export class CallSignal {
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal;
  readonly #timer: NodeJS.Timeout | undefined;
  #timedOut = false;
  readonly #onParentAbort = (): void => this.#controller.abort(this.#parent.reason);

  /** `timeoutReason` is what the signal aborts with on timeout (default: an AbortError). */
  constructor(parent: AbortSignal, timeoutMs?: number, timeoutReason?: () => unknown) {
    this.#parent = parent;
    if (timeoutMs !== undefined) {
      // past setTimeout's limit a timeout would fire at once; such a bound is no bound
      this.#timer = setTimeout(() => {
        this.#timedOut = true;
        this.#controller.abort(timeoutReason?.());
      }, Math.min(timeoutMs, MAX_TIMEOUT_MS));
      // the call it bounds keeps the process up while it runs; the timer alone must not
      this.#timer.unref();
    }
    if (parent.aborted) this.#onParentAbort();
    else follow(parent, this.#onParentAbort);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the timeout fired (the parent may have aborted too). */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  abort(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  /** Clears the timer and leaves the parent; call it when the call is over. */
  dispose(): void {
    clearTimeout(this.#timer);
    unfollow(this.#parent, this.#onParentAbort);
  }
}
