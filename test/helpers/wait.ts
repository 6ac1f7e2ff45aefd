/**
 * Waiting on a condition, the one way tests wait for something to happen.
 * A fake that knows when its state changes owns a `Changes` and calls
 * notify(); a wait given it re-checks at once instead of at its next poll.
 */

export interface WaitOptions {
  /** Fails after this long; 10 s by default. */
  readonly timeoutMs?: number;
  /** Checks again this often; 10 ms by default. */
  readonly everyMs?: number;
  /** Checks again as soon as this notifies, too. */
  readonly wake?: Changes;
}

/** Tells whoever waits on it that something changed. */
export class Changes {
  readonly #listeners = new Set<() => void>();

  notify(): void {
    for (const wake of this.#listeners) wake();
  }

  /** Calls `wake` on every notify() until the returned function is called. */
  subscribe(wake: () => void): () => void {
    this.#listeners.add(wake);
    return () => this.#listeners.delete(wake);
  }
}

/** A wait that ran out of time. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/**
 * Resolves with the first value of `check()` that is neither undefined nor
 * false; rejects after `timeoutMs` with a WaitTimeoutError saying what it
 * waited for, or with the error `check()` throws.
 */
export async function waitUntil<T>(what: string | (() => string), check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, everyMs = 10, wake } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await pause(Math.min(everyMs, left), wake);
  }
}

function pause(ms: number, wake: Changes | undefined): Promise<void> {
  return new Promise((resolve) => {
    // held, not unref()ed: while a test waits, the work it waits for may hang on unref()ed timers
    const timer = setTimeout(done, ms);
    const unsubscribe = wake?.subscribe(done);
    function done(): void {
      clearTimeout(timer);
      unsubscribe?.();
      resolve();
    }
  });
}
