/** Just enough of the Prometheus text format to read the daemon's /metrics. */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: Sample[];
  /** Metric names with a # TYPE line: a labelled counter never incremented has one but no samples. */
  readonly declared: Set<string>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const TYPE = /^#\s*TYPE\s+(\S+)\s+\S+/;

export function parsePrometheus(text: string): Exposition {
  const samples: Sample[] = [];
  const declared = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const t = TYPE.exec(line);
      if (t) declared.add(t[1]!);
      continue;
    }
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    samples.push({name: m[1]!, labels, value});
  }
  return {samples, declared};
}

/**
 * Sum of a metric's samples whose labels include every pair in `match`: 0
 * when the metric is declared with no matching sample, null when the
 * daemon does not expose it at all.
 */
export function sumOf(exp: Exposition, name: string, match: Record<string, string> = {}): number | null {
  let found = exp.declared.has(name);
  let sum = 0;
  for (const s of exp.samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).some(([k, v]) => s.labels[k] !== v)) continue;
    found = true;
    sum += s.value;
  }
  return found ? sum : null;
}

/**
 * The q-quantile of a histogram over a window, as PromQL's
 * `histogram_quantile(q, sum by (le) (increase(name_bucket[window])))` gives
 * it: the bucket increases from `before` to `after`, every series summed,
 * interpolated linearly inside the bucket the rank falls in. Null when
 * nothing was observed in the window or the daemon does not expose it.
 */
export function histogramQuantile(before: Exposition, after: Exposition, name: string, q: number): number | null {
  const counts = (exp: Exposition): Map<number, number> => {
    const byLe = new Map<number, number>();
    for (const s of exp.samples) {
      if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
    return byLe;
  };
  const start = counts(before);
  const buckets = [...counts(after)].map(([le, n]) => ({le, n: n - (start.get(le) ?? 0)})).sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.n ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const {le, n} of buckets) {
    if (n >= rank) {
      // as Prometheus does: a rank in the +Inf bucket is the highest finite bound
      if (le === Infinity) return lower;
      return lower + (le - lower) * ((rank - below) / (n - below || 1));
    }
    lower = le;
    below = n;
  }
  return lower;
}
