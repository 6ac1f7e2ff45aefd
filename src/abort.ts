import { MAX_TIMEOUT_MS } from './long-timeout.js';

/**
 * One call's signal, under a long-lived one: it aborts when the parent does
 * (with the parent's reason), after `timeoutMs` when one is given, or on
 * `abort()`. One controller, one timer and one listener, all let go by
 * `dispose()`: AbortSignal.any and AbortSignal.timeout would keep a signal per
 * call alive on the parent, and they cost more on the scrape path.
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
    else parent.addEventListener('abort', this.#onParentAbort, { once: true });
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
    this.#parent.removeEventListener('abort', this.#onParentAbort);
  }
}
