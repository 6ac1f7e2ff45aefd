import type { Cron } from 'croner';
import { realClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { MAX_TIMEOUT_MS } from '../long-timeout.js';
import { isTrace } from '../profiles/profile.js';
import type { Target, TargetProfile } from '../targets/index.js';
import { Semaphore } from './semaphore.js';
import { TickHeap } from './tick-heap.js';
import { cronOf, hashToUnit, nextTickAt, sameTiming } from './timing.js';

/** One loop: a target × profile type. */
export interface ScrapeTask {
  readonly key: string;
  readonly target: Target;
  readonly profile: TargetProfile;
}

/** What is left of a scrape after its request: the loop waits for it, the concurrency limit does not. */
export interface RunTail {
  readonly settled: Promise<void>;
}

/**
 * Takes a concurrency slot (waiting, at most until `signal` aborts) and gives
 * back its release. Asking twice gives the same slot; the scheduler releases
 * it, if nobody did, once the run is over.
 */
export type TakeSlot = (signal: AbortSignal) => Promise<() => void>;

export interface SchedulerHooks {
  /**
   * Does the scrape and hands the result on; never rejects for expected
   * failures. It may resolve with `{ settled }` once the request is done and
   * only local work is left (making the profile durable): the concurrency
   * slot is freed then, while the loop counts as running until `settled`.
   *
   * A CPU-style task (`profile.seconds` set) starts without a slot and gets
   * `slot`: the target answers only at the end of its window, so the run
   * takes the slot once the answer starts and reads the body under it.
   */
  run(task: ScrapeTask, plannedAt: number, signal: AbortSignal, slot?: TakeSlot): Promise<RunTail | void>;
  /** A tick came while the previous scrape of the same loop still ran. */
  onSkipped?(task: ScrapeTask, plannedAt: number): void;
  /** The scrape got its concurrency slot this late after its planned time (a CPU-style one: its request started). */
  onStarted?(task: ScrapeTask, latenessMs: number): void;
}

export interface SchedulerOptions {
  readonly concurrency: number;
  readonly clock?: Clock;
}

interface Loop {
  task: ScrapeTask;
  /** Stable in [0, 1): where in each interval (or spread) this loop ticks. */
  phase: number;
  nextAt: number;
  heapIndex: number;
  running: boolean;
  removed: boolean;
  controller: AbortController | undefined;
  cron: Cron | undefined;
}

/**
 * Runs every target × profile type on its own schedule at a stable offset
 * (so a fleet spreads out instead of bursting), under one global concurrency
 * limit, never two CPU-style profiles against one target at once (a trace
 * and a CPU profile excepted: see windowLockKey), and skips
 * (never queues) a tick whose previous scrape still runs. One timer for all
 * loops: a min-heap of next ticks.
 */
export class Scheduler {
  readonly #hooks: SchedulerHooks;
  readonly #clock: Clock;
  readonly #gate: Semaphore;
  readonly #loops = new Map<string, Loop>();
  readonly #heap = new TickHeap<Loop>();
  readonly #cpuLocks = new Map<string, Semaphore>();
  readonly #inFlight = new Set<Promise<void>>();
  #timer: unknown;
  #timerAt = Infinity;
  #stopped = false;

  constructor(options: SchedulerOptions, hooks: SchedulerHooks) {
    this.#hooks = hooks;
    this.#clock = options.clock ?? realClock;
    this.#gate = new Semaphore(options.concurrency);
  }

  /** Replaces the set of targets. Loops that stay keep their schedule and their in-flight scrape. */
  update(targets: readonly Target[]): { added: number; removed: number; changed: number } {
    const wanted = new Map<string, ScrapeTask>();
    for (const target of targets) {
      for (const profile of target.profiles) {
        const key = loopKey(target.id, profile.type);
        wanted.set(key, { key, target, profile });
      }
    }
    let added = 0;
    let removed = 0;
    let changed = 0;
    for (const [key, loop] of this.#loops) {
      if (wanted.has(key)) continue;
      this.#loops.delete(key);
      loop.removed = true;
      this.#heap.remove(loop);
      removed++;
    }
    const now = this.#clock.now();
    for (const [key, task] of wanted) {
      const loop = this.#loops.get(key);
      if (!loop) {
        const fresh: Loop = { task, phase: hashToUnit(key), nextAt: 0, heapIndex: -1, running: false, removed: false, controller: undefined, cron: undefined };
        fresh.cron = cronOf(task.target.timing);
        fresh.nextAt = nextTickAt(task.target.timing, fresh.phase, fresh.cron, now);
        this.#loops.set(key, fresh);
        this.#heap.push(fresh);
        added++;
        continue;
      }
      if (loop.task === task || sameTask(loop.task, task)) {
        loop.task = task;
        continue;
      }
      const timingChanged = !sameTiming(loop.task.target.timing, task.target.timing);
      loop.task = task;
      changed++;
      if (timingChanged) {
        loop.cron = cronOf(task.target.timing);
        loop.nextAt = nextTickAt(task.target.timing, loop.phase, loop.cron, now);
        this.#heap.fix(loop);
      }
    }
    this.#arm();
    return { added, removed, changed };
  }

  /** Changes the global concurrency limit (a reload). */
  setConcurrency(slots: number): void {
    this.#gate.resize(slots);
  }

  /** Planned time of a loop's next tick (for tests and the status page). */
  nextTickOf(key: string): number | undefined {
    return this.#loops.get(key)?.nextAt;
  }

  /** Planned time of the next tick of any of a target's types (Infinity when none is planned). */
  nextTickOfTarget(target: Target): number {
    return Math.min(...target.profiles.map((p) => this.nextTickOf(loopKey(target.id, p.type)) ?? Infinity));
  }

  get size(): number {
    return this.#loops.size;
  }

  /** Stops new ticks. In-flight scrapes go on until drain() or abort(). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Waits for in-flight scrapes, up to `deadlineMs`, then aborts what is left. */
  async drain(deadlineMs: number): Promise<void> {
    this.stop();
    if (this.#inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    // held, not unref()ed: a stopping process must wait out its deadline
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
    clearTimeout(timer);
    for (const loop of this.#loops.values()) loop.controller?.abort();
    await Promise.allSettled([...this.#inFlight]);
  }

  #arm(): void {
    if (this.#stopped) return;
    const first = this.#heap.first;
    if (!first || first.nextAt === Infinity) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      return;
    }
    if (this.#timer !== undefined && this.#timerAt === first.nextAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = first.nextAt;
    // A tick weeks away (`interval: 52w`, a yearly cron) is reached in steps:
    // a longer setTimeout fires after 1 ms, and the loop would spin. A step
    // that ends early fires nothing and arms the next one.
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.min(MAX_TIMEOUT_MS, Math.max(0, first.nextAt - this.#clock.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#stopped) return;
    const now = this.#clock.now();
    for (let loop = this.#heap.first; loop && loop.nextAt <= now; loop = this.#heap.first) {
      const planned = loop.nextAt;
      loop.nextAt = nextTickAt(loop.task.target.timing, loop.phase, loop.cron, Math.max(now, planned));
      this.#heap.fix(loop);
      if (loop.running) {
        this.#hooks.onSkipped?.(loop.task, planned);
        continue;
      }
      this.#start(loop, planned);
    }
    this.#arm();
  }

  #start(loop: Loop, planned: number): void {
    loop.running = true;
    const controller = new AbortController();
    loop.controller = controller;
    const task = loop.task;
    const run = async (): Promise<void> => {
      const lockKey = windowLockKey(task);
      const cpuLock = task.profile.seconds !== undefined ? this.#cpuLock(lockKey) : undefined;
      const releaseCpu = cpuLock ? await cpuLock.acquire() : undefined;
      let tail: RunTail | void = undefined;
      try {
        if (cpuLock) tail = await this.#runLazy(task, planned, controller.signal);
        else {
          const release = await this.#gate.acquire();
          try {
            if (controller.signal.aborted || this.#stopped) return;
            this.#hooks.onStarted?.(task, this.#clock.now() - planned);
            tail = await this.#hooks.run(task, planned, controller.signal);
          } finally {
            release();
          }
        }
      } finally {
        releaseCpu?.();
        if (cpuLock && cpuLock.idle) this.#cpuLocks.delete(lockKey);
      }
      if (tail) await tail.settled;
    };
    const p = run()
      .catch(() => {
        // run() reports its own failures; nothing may stop the loop
      })
      .finally(() => {
        loop.running = false;
        loop.controller = undefined;
        this.#inFlight.delete(p);
      });
    this.#inFlight.add(p);
  }

  // A CPU profile's request waits out its whole window before the answer
  // starts; holding a slot for it would let a few CPU profiles starve every
  // other scrape. It starts at once (lateness is counted to the request start)
  // and takes its slot through `slot` when the answer starts.
  async #runLazy(task: ScrapeTask, planned: number, signal: AbortSignal): Promise<RunTail | void> {
    if (signal.aborted || this.#stopped) return;
    let held: Promise<() => void> | undefined;
    const slot: TakeSlot = (waitSignal) => (held ??= this.#gate.acquire(waitSignal));
    this.#hooks.onStarted?.(task, this.#clock.now() - planned);
    try {
      return await this.#hooks.run(task, planned, signal, slot);
    } finally {
      // releases are idempotent; a slot still being waited for is given back when it comes
      if (held) void held.then((release) => release(), () => undefined);
    }
  }

  #cpuLock(key: string): Semaphore {
    let lock = this.#cpuLocks.get(key);
    if (!lock) {
      lock = new Semaphore(1);
      this.#cpuLocks.set(key, lock);
    }
    return lock;
  }
}

function sameTask(a: ScrapeTask, b: ScrapeTask): boolean {
  return a.profile.url === b.profile.url && a.profile.seconds === b.profile.seconds && sameTiming(a.target.timing, b.target.timing);
}

/**
 * Which CPU-style scrapes of a target wait for each other. Go profiles the CPU
 * once at a time and traces once at a time, but does both at once: a trace
 * waits only for the target's other trace, never for its CPU profile.
 */
function windowLockKey(task: ScrapeTask): string {
  return isTrace(task.profile) ? `${task.target.id}\0trace` : task.target.id;
}

/** A loop's key: its target and profile type. */
function loopKey(targetId: string, type: string): string {
  return `${targetId}/${type}`;
}
