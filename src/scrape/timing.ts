import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import type { Timing } from '../targets/index.js';

/**
 * The first tick of a loop after `after`: `phase` (in [0, 1), from
 * hashToUnit) places it within each interval, or within a cron schedule's
 * spread. Infinity when there is none.
 */
export function nextTickAt(timing: Timing, phase: number, cron: Cron | undefined, after: number): number {
  if (timing.kind === 'interval') {
    const offset = Math.floor(phase * timing.ms);
    // aligned to the epoch, so a restart or a reload keeps the same phase
    const k = Math.floor((after - offset) / timing.ms) + 1;
    return finiteOrNever(k * timing.ms + offset);
  }
  const next = cron?.nextRun(new Date(after - Math.floor(phase * timing.spreadMs)));
  return next ? finiteOrNever(next.getTime() + Math.floor(phase * timing.spreadMs)) : Infinity;
}

/** A tick time the heap can order: NaN (an interval beyond what a number holds) means never. */
function finiteOrNever(at: number): number {
  return Number.isFinite(at) ? at : Infinity;
}

export function cronOf(timing: Timing): Cron | undefined {
  return timing.kind === 'cron' ? new Cron(timing.schedule, { paused: true }) : undefined;
}

export function sameTiming(a: Timing, b: Timing): boolean {
  return a.kind === 'interval' && b.kind === 'interval' ? a.ms === b.ms : a.kind === 'cron' && b.kind === 'cron' ? a.schedule === b.schedule && a.spreadMs === b.spreadMs : false;
}

/** A stable number in [0, 1) from a key. */
export function hashToUnit(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;
}
