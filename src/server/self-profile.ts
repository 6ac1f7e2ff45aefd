import type * as DatadogPprof from '@datadog/pprof';

// The daemon's own /debug/pprof, Go-style, so it can be profiled like any
// target (the embedded default scrapes it). The profiler loads, and heap
// sampling starts, at the first /debug/pprof request: a daemon nobody
// profiles does not carry it. One CPU profile runs at a time: a second one is
// refused with the time the running one ends.

const HEAP_INTERVAL_BYTES = 512 * 1024;
const HEAP_STACK_DEPTH = 64;
type Pprof = typeof DatadogPprof;
let loading: Promise<Pprof> | undefined;
/** When the running CPU profile ends (ms since the epoch); undefined when none runs. */
let cpuEndsAt: number | undefined;

/** Loads the profiler and starts heap sampling, once. */
export function startHeapSampling(): Promise<Pprof> {
  loading ??= import('@datadog/pprof').then((pprof) => {
    pprof.heap.start(HEAP_INTERVAL_BYTES, HEAP_STACK_DEPTH);
    return pprof;
  });
  return loading;
}

/** gzip-compressed pprof of the heap samples taken since sampling started. */
export async function heapProfile(): Promise<Buffer> {
  const pprof = await startHeapSampling();
  return pprof.encode(pprof.heap.profile());
}

export class ProfilerBusyError extends Error {
  override readonly name = 'ProfilerBusyError';
  constructor(readonly retryAfterSeconds: number) {
    super('cpu profiling already in use');
  }
}

/** gzip-compressed pprof of wall-clock samples over `seconds`. */
export async function cpuProfile(seconds: number): Promise<Buffer> {
  if (cpuEndsAt !== undefined) throw new ProfilerBusyError(Math.max(1, Math.ceil((cpuEndsAt - Date.now()) / 1000)));
  cpuEndsAt = Date.now() + seconds * 1000;
  try {
    const pprof = await startHeapSampling();
    return await pprof.encode(await pprof.time.profile({ durationMillis: seconds * 1000 }));
  } finally {
    cpuEndsAt = undefined;
  }
}
