import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.js';

/** Monotonic, so a wall clock set back does not silence a kind of line; its timers do not hold the process open. */
const monotonicClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Rate-limits a kind of log line to one a window (a second). The next line
 * that gets out says how many were folded since the previous one; those
 * folded after the last line are told by `trailing` once the window ends, or
 * at flush(), so every event is accounted for.
 */
export class LineLimiter {
  readonly #trailing: (folded: number) => void;
  readonly #windowMs: number;
  readonly #clock: Clock;
  #last = -Infinity;
  #folded = 0;
  #timer: unknown;

  constructor(trailing: (folded: number) => void, options: { windowMs?: number; clock?: Clock } = {}) {
    this.#trailing = trailing;
    this.#windowMs = options.windowMs ?? 1000;
    this.#clock = options.clock ?? monotonicClock;
  }

  emit(log: (folded: number) => void): void {
    const now = this.#clock.now();
    if (now - this.#last < this.#windowMs) {
      this.#folded++;
      this.#timer ??= this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#trail();
      }, this.#last + this.#windowMs - now);
      return;
    }
    this.#stopTimer();
    this.#last = now;
    const folded = this.#folded;
    this.#folded = 0;
    log(folded);
  }

  /** Tells what was folded since the last line now (the owner closes). */
  flush(): void {
    this.#stopTimer();
    this.#trail();
  }

  #trail(): void {
    if (this.#folded === 0) return;
    // a trailing line is a line: the window starts again from it
    this.#last = this.#clock.now();
    const folded = this.#folded;
    this.#folded = 0;
    this.#trailing(folded);
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Keys seen round after round (a refresh's dropped targets, say), telling
 * which are new: a line is logged when a condition starts, not at every
 * round while it lasts, and again if it ends and comes back.
 */
export class LastingKeys {
  #previous = new Set<string>();
  #current = new Set<string>();

  /** Notes `key` in this round; true when the previous round did not have it. */
  isNew(key: string): boolean {
    this.#current.add(key);
    return !this.#previous.has(key);
  }

  /** Ends the round: keys it did not note are forgotten. */
  endRound(): void {
    this.#previous = this.#current;
    this.#current = new Set();
  }
}
