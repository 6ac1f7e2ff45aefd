import type { Labels } from '../profiles/profile.js';
import { GO_PROFILE_NAMES } from './pyroscope-series.js';

// The series labels of a Parca WriteRaw, by Parca's own rules
// (pkg/normalizer/normalizer.go, NormalizeWriteRawRequest, and
// pkg/profilestore/profilecolumnstore.go, writeSeries): `__name__` is
// required; every other name must be a valid Prometheus label name and
// appear once; the profile type `name:sample_type:sample_unit:period_type:
// period_unit` must parse as a PromQL metric selector, so each part must be
// legal in a metric name.

/** The label carrying the target's service: Parca's own scraper files a target under its scrape job's `job`. */
export const SERVICE_LABEL = 'job';

/** The prefix Parca (as Prometheus) gives a label whose name is taken (model.ExportedLabelPrefix). */
const EXPORTED = 'exported_';

const METRIC_PART = /^[a-zA-Z0-9_]*$/;

/** Parca's profile name of a type: the names its own scraper uses for Go's types, else the configured name made a legal metric name. */
export function parcaProfileName(type: string): string {
  const go = GO_PROFILE_NAMES[type];
  if (go !== undefined) return go;
  const legal = type.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(legal) ? `_${legal}` : legal;
}

/**
 * The labels of a series: `__name__`, `job` (the service), then the
 * target's labels; a target label named `__name__` or `job` goes as
 * `exported___name__` / `exported_job` (onRename says so), labels with an
 * empty value are left out (Prometheus treats them as absent).
 */
export function parcaLabels(name: string, service: string, labels: Labels, onRename?: (from: string, to: string) => void): [string, string][] {
  const out: [string, string][] = [
    ['__name__', name],
    [SERVICE_LABEL, service],
  ];
  const taken = new Set(out.map(([n]) => n));
  for (const [label, value] of Object.entries(labels)) {
    if (value === '') continue;
    let sent = label;
    while (taken.has(sent)) sent = `${EXPORTED}${sent}`;
    if (sent !== label) onRename?.(label, sent);
    taken.add(sent);
    out.push([sent, value]);
  }
  return out;
}

/**
 * Why Parca would refuse a profile with these sample types and period type
 * (its profile type string does not parse as a metric selector), or
 * undefined.
 */
export function profileTypeProblem(name: string, parts: readonly string[]): string | undefined {
  const bad = parts.find((p) => !METRIC_PART.test(p));
  if (bad === undefined) return undefined;
  return `Parca files a profile as "${name}:<sample type>:<unit>:<period type>:<period unit>", which must be a legal metric name, and this profile has ${JSON.stringify(bad)}`;
}
