/**
 * Lets a test wait until a fake has seen enough: the fake calls notify() when
 * something arrives, a test awaits until() with its condition and deadline.
 */
export class Arrivals {
  readonly #waiters = new Set<() => void>();

  notify(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once `ready()` holds; rejects with `failure()` after timeoutMs. */
  until(ready: () => boolean, timeoutMs: number, failure: () => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(failure()));
      }, timeoutMs);
      // held, not unref()ed: while a test waits, the work it waits for may hang on unref()ed timers
      this.#waiters.add(check);
      check();
    });
  }
}
