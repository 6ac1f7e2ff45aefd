/**
 * The longest delay setTimeout takes (2^31-1 ms, about 24.8 days). A longer
 * one is cut to 1 ms with a TimeoutOverflowWarning, so a wait derived from a
 * config duration (`interval: 52w`) would spin instead of idle.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A wait of any length as a chain of timers no longer than MAX_TIMEOUT_MS; unref()ed like every timer of the daemon's loops. */
export function setLongTimeout(fn: () => void, ms: number): { clear(): void } {
  const wait = Number.isNaN(ms) ? 0 : Math.max(0, ms);
  const deadline = Date.now() + wait;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMEOUT_MS));
    timer.unref();
  };
  timer = setTimeout(arm, Math.min(wait, MAX_TIMEOUT_MS));
  timer.unref();
  return { clear: () => clearTimeout(timer) };
}
