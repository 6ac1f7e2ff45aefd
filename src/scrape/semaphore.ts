/** A counting semaphore: acquire() waits for a slot and gives back its release(). */
export class Semaphore {
  #free: number;
  #slots: number;
  readonly #waiters: (() => void)[] = [];

  constructor(slots: number) {
    this.#free = slots;
    this.#slots = slots;
  }

  /** A wait ended by `signal` rejects with its reason and takes no slot. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#free > 0 && this.#waiters.length === 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal?.reason as Error);
        };
        const waiter = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(waiter);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#free++;
      this.#handOut();
    };
  }

  /** Changes the number of slots; holders keep theirs, a shrink takes effect as they release. */
  resize(slots: number): void {
    this.#free += slots - this.#slots;
    this.#slots = slots;
    this.#handOut();
  }

  #handOut(): void {
    while (this.#free > 0 && this.#waiters.length > 0) {
      this.#free--;
      this.#waiters.shift()?.();
    }
  }

  /** Nobody holds a slot and nobody waits. */
  get idle(): boolean {
    return this.#waiters.length === 0 && this.#free === this.#slots;
  }

  get waiting(): number {
    return this.#waiters.length;
  }
}
