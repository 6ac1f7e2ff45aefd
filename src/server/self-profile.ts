import { encode, heap, time } from '@datadog/pprof';

// The daemon's own /debug/pprof, Go-style, so it can be profiled like any
// target (the embedded default scrapes it). Heap sampling starts once; a CPU
// profile answers 500 "already in use" when one runs, as Go's does.

const HEAP_INTERVAL_BYTES = 512 * 1024;
const HEAP_STACK_DEPTH = 64;
let heapStarted = false;
let cpuBusy = false;

export function startHeapSampling(): void {
  if (heapStarted) return;
  heap.start(HEAP_INTERVAL_BYTES, HEAP_STACK_DEPTH);
  heapStarted = true;
}

/** gzip-compressed pprof of live heap samples. */
export async function heapProfile(): Promise<Buffer> {
  startHeapSampling();
  return encode(heap.profile());
}

export class ProfilerBusyError extends Error {
  override readonly name = 'ProfilerBusyError';
  constructor() {
    super('cpu profiling already in use');
  }
}

/** gzip-compressed pprof of wall-clock samples over `seconds`. */
export async function cpuProfile(seconds: number): Promise<Buffer> {
  if (cpuBusy) throw new ProfilerBusyError();
  cpuBusy = true;
  try {
    return await encode(await time.profile({ durationMillis: seconds * 1000 }));
  } finally {
    cpuBusy = false;
  }
}
