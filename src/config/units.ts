// Durations and sizes as operators write them: `250ms`, `10s`, `1h30m`, `7d`;
// `512KiB`, `64MiB`, `10GiB` (also `MB`-style decimal units and plain bytes).

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};
/** A duration's text, unanchored: the parser below and the config's JSON Schema (fields.ts) share it. */
export const DURATION_GRAMMAR = '(?:\\d+(?:ms|s|m|h|d|w))+';
const DURATION_RE = new RegExp(`^${DURATION_GRAMMAR}$`);
const DURATION_PART_RE = /(\d+)(ms|s|m|h|d|w)/g;

/** Parses a duration into milliseconds, or returns undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(DURATION_PART_RE)) {
    ms += Number(n) * (DURATION_UNITS[unit ?? ''] ?? 0);
  }
  return ms;
}

/** Formats milliseconds the way Prometheus does: `1m30s`, `250ms`, `7d`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['w', 7 * 86_400_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
/** A size's text, unanchored, after trimming: the parser below and the config's JSON Schema (fields.ts) share it. */
export const SIZE_GRAMMAR = '(\\d+(?:\\.\\d+)?)\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?';
const SIZE_RE = new RegExp(`^${SIZE_GRAMMAR}$`);

/** Parses a size into bytes, or returns undefined when it is not one. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? 1));
}

export function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
