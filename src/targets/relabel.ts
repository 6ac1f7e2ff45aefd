import { createHash } from 'node:crypto';
import type { RelabelRule } from '../config/relabel.js';
import { LABEL_NAME_RE } from '../config/target-settings.js';
import { expand } from './relabel-regex.js';

/** Labels while rules run: a name with an empty value is no label (as Prometheus's labels.Builder). */
export type LabelSet = Record<string, string>;

export type RelabelResult = { readonly keep: true; readonly labels: LabelSet } | { readonly keep: false; readonly rule: number };

/**
 * Prometheus's relabeling (model/relabel/relabel.go ProcessBuilder): the rules
 * in order over one label set; `keep`/`drop` (and `keepequal`/`dropequal`)
 * stop at the first rule that drops, naming its index. Pure: `input` is not
 * changed. Label names the rules make follow the daemon's rule (letters,
 * digits, `_`), Prometheus's "legacy" validation.
 */
export function relabel(input: Readonly<LabelSet>, rules: readonly RelabelRule[]): RelabelResult {
  const labels: LabelSet = { ...input };
  for (let i = 0; i < rules.length; i++) {
    if (!applyRule(rules[i] as RelabelRule, labels)) return { keep: false, rule: i };
  }
  return { keep: true, labels };
}

function set(labels: LabelSet, name: string, value: string): void {
  if (value === '') delete labels[name];
  else labels[name] = value;
}

function isLabelName(name: string): boolean {
  return LABEL_NAME_RE.test(name);
}

/** Names in sorted order, as Prometheus's label sets iterate, over a copy: rules that add labels do not see their own additions. */
function sortedNames(labels: LabelSet): string[] {
  return Object.keys(labels).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function applyRule(rule: RelabelRule, labels: LabelSet): boolean {
  const value = rule.source_labels.map((name) => labels[name] ?? '').join(rule.separator);
  const target = rule.target_label ?? '';
  switch (rule.action) {
    case 'drop':
      return !rule.regex.test(value);
    case 'keep':
      return rule.regex.test(value);
    case 'dropequal':
      return (labels[target] ?? '') !== value;
    case 'keepequal':
      return (labels[target] ?? '') === value;
    case 'replace': {
      const match = rule.regex.groups(value);
      // no match, no replacement
      if (match === undefined) return true;
      const name = expand(target, match);
      if (!isLabelName(name)) return true;
      set(labels, name, expand(rule.replacement, match));
      return true;
    }
    case 'lowercase':
      set(labels, target, value.toLowerCase());
      return true;
    case 'uppercase':
      set(labels, target, value.toUpperCase());
      return true;
    case 'hashmod':
      set(labels, target, String(hashMod(value, rule.modulus ?? 1)));
      return true;
    case 'labelmap':
      for (const name of sortedNames(labels)) {
        const match = rule.regex.groups(name);
        if (match === undefined) continue;
        // Prometheus sets what ReplaceAllString gives, valid or not; the builder refuses a target with an invalid name
        set(labels, expand(rule.replacement, match), labels[name] ?? '');
      }
      return true;
    case 'labeldrop':
      for (const name of sortedNames(labels)) if (rule.regex.test(name)) delete labels[name];
      return true;
    case 'labelkeep':
      for (const name of sortedNames(labels)) if (!rule.regex.test(name)) delete labels[name];
      return true;
  }
}

/**
 * Prometheus's hashmod: the MD5 of the value, its last 8 bytes read as a
 * big-endian unsigned 64-bit number, modulo `modulus`; so a rule that shards
 * targets in prometheus.yml puts each target in the same shard here.
 */
export function hashMod(value: string, modulus: number): number {
  const digest = createHash('md5').update(value, 'utf8').digest();
  return Number(digest.readBigUInt64BE(8) % BigInt(modulus));
}
