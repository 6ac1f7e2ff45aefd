/**
 * RSS, open file descriptors and CPU of one process every few seconds, for
 * the soak and the plots over time. The PID can change (the daemon restarted
 * on the same state_dir); CPU then carries on from the previous life's total.
 */
import {cpuSeconds, openFds, rssKiB} from './proc.js';

export interface ProcSample {
  /** Seconds since the process first started (warm-up included). */
  readonly t: number;
  readonly pid: number;
  readonly rssMiB: number;
  readonly fds: number;
  /** CPU seconds since the first start, every life summed. */
  readonly cpuSeconds: number;
}

export interface Growth {
  /** Samples taken after warm-up, and the seconds they span. */
  readonly samples: number;
  readonly seconds: number;
  /** Mean RSS over the first and the last tenth of those samples (at least one each). */
  readonly rssStartMiB: number;
  readonly rssEndMiB: number;
  readonly rssGrowthPercent: number;
  readonly rssMaxMiB: number;
  /** Least-squares slope of RSS over time. */
  readonly rssSlopeMiBPerHour: number;
  readonly fdsStart: number;
  readonly fdsEnd: number;
  readonly fdsMin: number;
  readonly fdsMax: number;
}

export class Sampler {
  readonly samples: ProcSample[] = [];
  readonly #t0 = Date.now();
  #pid: number;
  #cpuBefore = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(pid: number, everyMs: number) {
    this.#pid = pid;
    this.take();
    this.#timer = setInterval(() => this.take(), everyMs);
    this.#timer.unref();
  }

  /** The process was replaced: `cpuSoFar` is what the previous lives used. */
  follow(pid: number, cpuSoFar: number): void {
    this.#pid = pid;
    this.#cpuBefore = cpuSoFar;
    this.take();
  }

  /** Seconds since the first start, on the samples' clock. */
  secondsNow(): number {
    return (Date.now() - this.#t0) / 1000;
  }

  take(): void {
    try {
      const pid = this.#pid;
      this.samples.push({t: this.secondsNow(), pid, rssMiB: rssKiB(pid) / 1024, fds: openFds(pid), cpuSeconds: this.#cpuBefore + cpuSeconds(pid)});
    } catch {
      // between lives, or exited: the next sample tells
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** How RSS and descriptors moved after `fromSeconds` (the end of warm-up); undefined with fewer than 2 samples. */
export function growthAfter(samples: readonly ProcSample[], fromSeconds: number): Growth | undefined {
  const s = samples.filter((x) => x.t >= fromSeconds);
  if (s.length < 2) return undefined;
  const k = Math.max(1, Math.round(s.length / 10));
  const start = mean(s.slice(0, k).map((x) => x.rssMiB));
  const end = mean(s.slice(-k).map((x) => x.rssMiB));
  const tm = mean(s.map((x) => x.t));
  const rm = mean(s.map((x) => x.rssMiB));
  const sxx = s.reduce((a, x) => a + (x.t - tm) ** 2, 0);
  const sxy = s.reduce((a, x) => a + (x.t - tm) * (x.rssMiB - rm), 0);
  const fds = s.map((x) => x.fds);
  return {
    samples: s.length,
    seconds: s.at(-1)!.t - s[0]!.t,
    rssStartMiB: start,
    rssEndMiB: end,
    rssGrowthPercent: ((end - start) / start) * 100,
    rssMaxMiB: Math.max(...s.map((x) => x.rssMiB)),
    rssSlopeMiBPerHour: sxx > 0 ? (sxy / sxx) * 3600 : 0,
    fdsStart: mean(fds.slice(0, k)),
    fdsEnd: mean(fds.slice(-k)),
    fdsMin: Math.min(...fds),
    fdsMax: Math.max(...fds),
  };
}
