import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

/**
 * A full garbage collection now, when the runtime lets us ask for one;
 * false when it does not. For tests that check an object is no longer
 * reachable (a WeakRef cleared). `gc` is V8's own function, exposed for a
 * new context only (as Jest and the expose-gc package obtain it), then
 * hidden again; the daemon never calls it.
 */
export function collectGarbage(): boolean {
  collector ??= gcFunction();
  if (collector === null) return false;
  collector();
  return true;
}

function gcFunction(): (() => void) | null {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
