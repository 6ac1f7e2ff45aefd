/** Flag parsing shared by the bench processes: durations like the daemon's config, whole numbers, lists. */

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const UNITS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000};

/** '250ms', '15s', '5m', '1h' (or a bare number of seconds) → milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a duration (use 250ms, 15s, 5m, 1h)`);
  const ms = Number(m[1]) * UNITS[m[2] ?? 's']!;
  if (!(ms > 0)) throw new UsageError(`${flag}: ${JSON.stringify(value)} must be more than zero`);
  return ms;
}

export function parseWhole(value: string, flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range ${min}..${max}`);
  return n;
}

export function parseList(value: string, flag: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag}: empty list`);
  return items;
}

/** Runs a bench entry point: usage errors and failures end the process with a clear message. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`${name}: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exitCode = 1;
    }
  });
}
