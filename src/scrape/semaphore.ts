/** A counting semaphore: acquire() waits for a slot and gives back its release(). */
export class Semaphore {
  #free: number;
  #slots: number;
  readonly #waiters: (() => void)[] = [];

  constructor(slots: number) {
    this.#free = slots;
    this.#slots = slots;
  }

  async acquire(): Promise<() => void> {
    if (this.#free > 0 && this.#waiters.length === 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
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
