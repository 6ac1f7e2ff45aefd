/** The shape of results.json, shared by the orchestrator and bench/plot.ts. */
import type {Growth, ProcSample} from './sampler.js';

export type Repository = 'profefe' | 'pyroscope';

/** One implementation's figures for one fleet size. */
export interface Measurement {
  impl: 'daemon' | 'relay';
  targets: number;
  repository: Repository;
  error?: string;
  window?: {
    seconds: number;
    cpuSeconds: number;
    profilesReceived: number;
    profilesExpected: number;
    cpuMsPer1000Profiles: number | null;
    fleetCpuSeconds: number;
    sinkCpuSeconds: number;
    skippedTicks: number | null;
  };
  peakRssMiB?: number;
  latenessSeconds?: {p50: number | null; p99: number | null};
  lifetime?: {
    scrapedOk: number | null;
    served: number;
    received: number;
    /** Pyroscope: profiles that only set a delta baseline (first of a series, or a restart), sent as nothing by design. */
    baselineResets?: number;
    lostScrapedMinusReceived: number | null;
    lostServedMinusReceived: number;
    sinkRejected: Record<string, number>;
    fleetCpuConflicts: number;
  };
  /** Profiles left in the durable queue at the stop, sent by a daemon with no targets started on the same state_dir; counted as received. */
  deliveredAfterStop?: number;
  /** Pyroscope: delta baselines forgotten to stay within memory, every life summed; null when the daemon exposes no such metric. */
  baselineEvictions?: number | null;
  /** du of the daemon's state_dir at the end (apparent bytes), per top-level entry and per target. */
  stateDirBytes?: number;
  stateDirBytesPerTarget?: number;
  stateDirByEntry?: Record<string, number>;
  /** With --restart-at: the daemon stopped with SIGTERM and started again on the same state_dir. */
  restart?: {
    atSeconds: number;
    exit: {code: number | null; signal: string | null};
    downSeconds: number;
    stateDirBytesAtStop: number;
    /** Pyroscope: after the restart, profiles that only set a baseline (first: the baseline was not there) and the profiles the sink got. */
    firstResetsAfter: number | null;
    restartResetsAfter: number | null;
    receivedAfter: number;
    /** Successful scrapes after the restart, of the types sent. */
    scrapedAfter?: number;
    seriesCount: number;
    /** No baseline lost and deltas arriving; null until every series was scraped again after the restart. */
    deltasContinued: boolean | null;
  };
  /** RSS, fds and CPU of the daemon every --sample-every. */
  samples?: ProcSample[];
  /** How RSS and fds moved after warm-up (the soak's figures). */
  growth?: Growth;
  /** Daemon: its own metrics at the end of the window; relay: its JSON line. */
  own?: unknown;
}

export interface ResultsDoc {
  startedAt: string;
  options: Record<string, unknown> & {repository?: Repository; soakMs?: number | null; warmupMs?: number};
  machine: {cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string};
  results: Measurement[];
  check?: {ok: boolean; failures: string[]};
}
