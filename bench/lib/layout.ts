/**
 * Where the simulated fleet lives and what it serves, shared by the fleet,
 * the relay and the orchestrator so all three agree on addresses and paths.
 * Imported by the relay: keep it free of paths into the repository.
 */
import {createHash} from 'node:crypto';

// 127.0.1.1 upwards, 250 per third octet: all of 127.0.0.0/8 routes to lo on
// Linux, so each target gets its own address (as on a real network) while
// 127.0.0.x stays free for the sink, the daemon and the stats listeners.
export const TARGETS_PER_OCTET = 250;
export const MAX_TARGETS = TARGETS_PER_OCTET * 254;

export function targetHost(i: number): string {
  return `127.0.${1 + Math.floor(i / TARGETS_PER_OCTET)}.${1 + (i % TARGETS_PER_OCTET)}`;
}

/** Profile types the fleet serves, each from its fixture file. */
export const FLEET_TYPES = ['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'cpu'] as const;
export type FleetType = (typeof FLEET_TYPES)[number];

export function isFleetType(t: string): t is FleetType {
  return (FLEET_TYPES as readonly string[]).includes(t);
}

/** The path a scraper asks for: Go's net/http/pprof layout. */
export function profilePath(type: FleetType, cpuSeconds: number): string {
  return type === 'cpu' ? `/debug/pprof/profile?seconds=${cpuSeconds}` : `/debug/pprof/${type}`;
}

/** A stable offset within the interval for one target × type, so scrapes spread out as the daemon's do. */
export function offsetMs(address: string, type: string, intervalMs: number): number {
  const h = createHash('sha256').update(`${address}\0${type}`).digest();
  return Number(h.readBigUInt64BE(0) % BigInt(Math.max(1, Math.floor(intervalMs))));
}
