import { LineCounter, parseDocument } from 'yaml';
import { checkShape, nodeAt } from '../../config/yaml-shape.js';
import { isMap, pathToString } from '../../config/issues.js';
import type { IssuePath } from '../../config/issues.js';
import { LABEL_NAME_RE } from '../../config/target-settings.js';
import type { Discovered } from '../../targets/index.js';

// Prometheus's target group format, which file_sd files and http_sd answers
// share (discovery/targetgroup/targetgroup.go): a list of
// `{targets: [address, ...], labels: {name: value}}`. Whatever it holds is
// untrusted: it becomes metadata, never settings, and the target builder
// applies its trust rules to it as to EC2 tags and Docker labels.

/** Where an answer came from, for messages: a file's path or a URL. */
export interface GroupsSource {
  readonly name: string;
  /** `__meta_*` labels every target of this answer gets (`__meta_filepath`, `__meta_url`). */
  readonly meta: Readonly<Record<string, string>>;
}

export interface GroupLimits {
  /** Targets in one answer, all groups together. */
  readonly maxTargets: number;
}

/** An answer that is not a valid target group list; the message says where (`file:line` when the text has lines). */
export class TargetGroupsError extends Error {
  override readonly name = 'TargetGroupsError';
}

/**
 * Parses a target group list. JSON is read as JSON; YAML (file_sd's .yml and
 * .yaml) as YAML with its aliases bounded. A problem names the source and,
 * where it can, the line: `targets.json:12: groups[3].labels: ...`.
 */
export function parseTargetGroups(text: string, format: 'json' | 'yaml', source: GroupsSource, limits: GroupLimits): Discovered[] {
  let data: unknown;
  if (format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new TargetGroupsError(`${source.name}${jsonErrorLine(text, err)}: not valid JSON (${(err as Error).message}); a file still being written is read again when it changes`);
    }
  } else {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
    const first = doc.errors[0];
    if (first) {
      const pos = first.linePos?.[0];
      throw new TargetGroupsError(`${source.name}${pos ? `:${pos.line}` : ''}: not valid YAML (${first.message.split('\n')[0] ?? ''}); a file still being written is read again when it changes`);
    }
    const shape = checkShape(doc);
    if (shape.problem) throw new TargetGroupsError(`${source.name}: ${shape.problem.message}`);
    data = doc.toJS({ maxAliasCount: -1 });
  }
  return groupsOf(data, text, source, limits);
}

function groupsOf(data: unknown, text: string, source: GroupsSource, limits: GroupLimits): Discovered[] {
  const fail = (path: IssuePath, message: string): never => {
    throw new TargetGroupsError(`${source.name}${lineOf(text, path)}: ${path.length > 0 ? `${pathToString(['groups', ...path])}: ` : ''}${message}`);
  };
  // an empty file (or `null`) is an empty list, as Prometheus reads it
  if (data === null || data === undefined) return [];
  if (!Array.isArray(data)) fail([], 'expected a list of target groups ({targets: [...], labels: {...}})');
  const groups = data as unknown[];
  const found: Discovered[] = [];
  let count = 0;
  groups.forEach((group, g) => {
    if (!isMap(group)) fail([g], 'expected a target group: a map with targets and labels');
    const m = group as Record<string, unknown>;
    for (const key of Object.keys(m)) if (key !== 'targets' && key !== 'labels') fail([g, key], `unknown key ${JSON.stringify(key)}: a target group has targets and labels`);
    const targets = m['targets'] ?? [];
    if (!Array.isArray(targets)) fail([g, 'targets'], 'expected a list of addresses');
    const labels = m['labels'] ?? {};
    if (!isMap(labels)) fail([g, 'labels'], 'expected a map of label names to values');
    const { plain, directives, meta } = splitLabels(labels as Record<string, unknown>, (name, why) => fail([g, 'labels', name], why));
    (targets as unknown[]).forEach((t, i) => {
      if (typeof t !== 'string' || t.trim() === '') fail([g, 'targets', i], 'expected an address like 10.0.0.5:6060');
      if (++count > limits.maxTargets) {
        fail([g, 'targets', i], `more than ${limits.maxTargets} targets: raise max_targets if this is meant, or split the list`);
      }
      found.push({
        address: (t as string).trim(),
        labels: {},
        ...(Object.keys(plain).length > 0 ? { hidden: plain } : {}),
        ...(Object.keys(directives).length > 0 ? { directives } : {}),
        meta: { ...meta, ...source.meta },
      });
    });
  });
  return found;
}

/**
 * A group's labels: `pprof.*` ones are directives (port, path, scheme,
 * service, profiles, interval, as EC2 tags are); every other label is a
 * directive too, `pprof.label.<name>`, so it reaches the target under the
 * same rules (never a label the daemon owns) and with the precedence a
 * static target's labels have. `__*` labels are for relabel_configs only.
 */
function splitLabels(labels: Record<string, unknown>, fail: (name: string, why: string) => never): { plain: Record<string, string>; directives: Record<string, string>; meta: Record<string, string> } {
  const plain: Record<string, string> = {};
  const directives: Record<string, string> = {};
  const meta: Record<string, string> = {};
  for (const [name, raw] of Object.entries(labels)) {
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') fail(name, 'a label value must be a string');
    const value = String(raw);
    if (name.startsWith('pprof.')) {
      directives[name] = value;
    } else if (!LABEL_NAME_RE.test(name)) {
      fail(name, `label name ${JSON.stringify(name)} is not valid: use letters, digits and _ (not first), or a pprof.* key`);
    } else if (name.startsWith('__')) {
      meta[name] = value;
    } else {
      plain[name] = value;
      directives[`pprof.label.${name}`] = value;
    }
  }
  return { plain, directives, meta };
}

/** Past this, an error names the path without the line: finding it would take the YAML parser seconds. */
const MAX_LINE_SEARCH = 256 * 1024;

/** `:line` of a path in the text, when the text parses as YAML (JSON does) and the path is found. */
function lineOf(text: string, path: IssuePath): string {
  if (path.length === 0 || text.length > MAX_LINE_SEARCH) return '';
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, logLevel: 'silent' });
    const { node } = nodeAt(doc, path, false);
    const offset = node?.range?.[0];
    return offset === undefined ? '' : `:${lineCounter.linePos(offset).line}`;
  } catch {
    return '';
  }
}

/** `:line` of a JSON.parse error, from the position V8 gives. */
function jsonErrorLine(text: string, err: unknown): string {
  const m = /at position (\d+)/.exec(err instanceof Error ? err.message : '');
  if (m) {
    const pos = Number(m[1]);
    let line = 1;
    for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
    return `:${line}`;
  }
  // "Unexpected end of JSON input": the file ends early, as a half-written one does
  return /end of JSON/.test(err instanceof Error ? err.message : '') ? `:${text.split('\n').length}` : '';
}
