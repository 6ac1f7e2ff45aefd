/**
 * Reading a metric in a test: from the prom-client object the code under
 * test holds, or from the Prometheus text a /metrics endpoint serves.
 */

/** What metricSum reads: any prom-client metric (counter, gauge, histogram). */
export interface PromMetric {
  get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }>;
}

/** The sum over a prom-client metric's series whose labels include `labels`; 0 when none does. */
export async function metricSum(metric: PromMetric, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

/** The value of the first sample `name` whose labels include `labels` in Prometheus text format, or undefined when there is none. */
export function exposedValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(lm[1]!, lm[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}
