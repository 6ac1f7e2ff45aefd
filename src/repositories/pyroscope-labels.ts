import type { Labels } from '../profiles/profile.js';
import { sanitizeLabelName } from '../targets/labels.js';

// The labels of a Pyroscope series and the limits Pyroscope's ValidateLabels
// (pkg/validation/validate.go) holds them to. Apart from the adapter, so the
// target builder can tell before anything is scraped that a target's labels
// can never fit.

/**
 * Label names set here or by Pyroscope itself (pkg/model/labels.go); a target
 * label of one of these names would be refused as a duplicate or change what
 * Pyroscope does with the series, so it is renamed.
 */
const RESERVED = [
  '__name__',
  '__delta__',
  'service_name',
  '__profile_type__',
  '__service_name__',
  '__otel__',
  '__period_type__',
  '__period_unit__',
  '__session_id__',
  '__type__',
  '__unit__',
  '__sampled__',
  '__order__',
];

/** The labels every series starts with, before the target's own. */
const FIXED_LABELS = 3;

/** Pyroscope's max_label_name_length and max_label_value_length defaults, in bytes (pkg/validation/limits.go). */
const MAX_LABEL_NAME_BYTES = 1024;
const MAX_LABEL_VALUE_BYTES = 2048;

/**
 * A label name Pyroscope takes unchanged. Its ValidateLabels
 * (pkg/validation/validate.go) takes any non-empty UTF-8 name by default; a
 * tenant with label sanitisation on (disable_label_sanitization: false) takes
 * letters, digits (not first), `_` and `.`, dots turned into `_`, and refuses
 * the rest. A name both take unchanged is one of the target label rule
 * (sanitizeLabelName), so that rule makes it; only an empty name, which a
 * target drops but a label here still needs, becomes `_`.
 */
export function pyroscopeLabelName(name: string): string {
  return sanitizeLabelName(name) ?? '_';
}

/**
 * The series labels for a profile. Target labels come in name order; a name
 * that is reserved, or sanitises to one already taken by an earlier label,
 * gets `_2`, `_3`, … so no two names become one and no value overwrites
 * another. Empty values are left out (Pyroscope, like Prometheus, treats an
 * empty value as no label).
 */
export function pyroscopeLabels(
  profileName: string,
  service: string,
  labels: Labels,
  onRename?: (from: string, to: string, reason: string) => void,
): [string, string][] {
  const out: [string, string][] = [
    ['__name__', profileName],
    ['__delta__', 'false'],
    ['service_name', service],
  ];
  const taken = new Set(RESERVED);
  for (const key of Object.keys(labels).sort()) {
    const value = labels[key] ?? '';
    if (value === '') continue;
    let name = pyroscopeLabelName(key);
    const reasons: string[] = [];
    if (name !== key) reasons.push('Pyroscope refuses or changes this name');
    if (taken.has(name)) {
      reasons.push(RESERVED.includes(name) ? `${name} is a label Pyroscope sets itself` : `another label is sent as ${name}`);
      let i = 2;
      while (taken.has(`${name}_${i}`)) i++;
      name = `${name}_${i}`;
    }
    if (name !== key) onRename?.(key, name, reasons.join('; '));
    taken.add(name);
    out.push([name, value]);
  }
  return out;
}

/**
 * Why Pyroscope would refuse a series of `series` labels (as pyroscopeLabels
 * makes them) plus the labels one group of samples adds (Pyroscope files each
 * set of sample labels as a series of its own), or undefined.
 */
export function seriesLabelsProblem(
  series: readonly (readonly [string, string])[],
  maxNames: number,
  fromSamples: readonly (readonly [string, string])[] = [],
): string | undefined {
  const count = series.length + fromSamples.length;
  if (maxNames > 0 && count > maxNames) {
    const own = series.slice(FIXED_LABELS).map(([name]) => name);
    const samples = fromSamples.map(([name]) => name);
    const what = `__name__, __delta__, service_name, ${own.length} target label${own.length === 1 ? '' : 's'}${own.length > 0 ? ` (${own.join(', ')})` : ''}${samples.length > 0 ? ` and the sample label${samples.length === 1 ? '' : 's'} ${samples.join(', ')}` : ''}`;
    const drop = samples.length > 0 ? 'drop target labels or the labels the program sets on its samples' : 'drop target labels';
    return `the series has ${count} label names (${what}) and Pyroscope allows ${maxNames} (max_label_names_per_series): ${drop} (${count - maxNames} too many), or raise max_label_names_per_series on this repository and on the server`;
  }
  for (const [name, value] of [...series, ...fromSamples]) {
    if (Buffer.byteLength(name) > MAX_LABEL_NAME_BYTES) return `label name ${name.slice(0, 64)}… is longer than the ${MAX_LABEL_NAME_BYTES} bytes Pyroscope allows (max_label_name_length): shorten it`;
    if (Buffer.byteLength(value) > MAX_LABEL_VALUE_BYTES) return `label ${name} has a value longer than the ${MAX_LABEL_VALUE_BYTES} bytes Pyroscope allows (max_label_value_length): shorten it or drop the label`;
  }
  return undefined;
}

/**
 * Why a Pyroscope repository with this `max_label_names_per_series` can never
 * take a target's profiles, whatever its profiles hold, or undefined. The
 * profile name does not change the count, and is never long.
 */
export function targetLabelsProblem(service: string, labels: Labels, maxNames: number): string | undefined {
  return seriesLabelsProblem(pyroscopeLabels('', service, labels), maxNames);
}
