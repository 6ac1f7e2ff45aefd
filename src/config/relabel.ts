import { z } from 'zod';
import { RelabelRegex } from '../targets/relabel-regex.js';
import { quote } from './fields.js';
import { LABEL_NAME_RE } from './target-settings.js';

// `relabel_configs`, as a Prometheus job has them (model/relabel/relabel.go):
// the same keys, defaults and checks, so rules pasted from prometheus.yml load
// here or fail with the reason Prometheus would give. Label names follow the
// daemon's rule (letters, digits, `_`), Prometheus's "legacy" validation.

export const RELABEL_ACTIONS = ['replace', 'keep', 'drop', 'keepequal', 'dropequal', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase'] as const;
export type RelabelAction = (typeof RELABEL_ACTIONS)[number];

const DEFAULT_REGEX = '(.*)';
const DEFAULT_SEPARATOR = ';';
const DEFAULT_REPLACEMENT = '$1';

/** A label name, or one with `$1`/`${name}` references in it (Prometheus's relabelTargetLegacy). */
const NAME_WITH_REFS_RE = /^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$/;

const labelName = z.string().regex(LABEL_NAME_RE, { error: (iss) => `label name ${quote(iss.input)} is not valid: use letters, digits and _ (not first)` });

// `regex:` with no value is the empty regex, as in Prometheus: it matches the empty value only
const regex = z
  .string({ error: 'regex must be a string (quote it in YAML)' })
  .nullable()
  .transform((text, ctx) => {
    const source = text ?? '';
    try {
      return new RelabelRegex(source);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const action = z
  .string()
  .transform((a) => a.toLowerCase())
  .pipe(z.enum(RELABEL_ACTIONS, { error: (iss) => `unknown relabel action ${quote(iss.input)}: use one of ${RELABEL_ACTIONS.join(', ')}` }));

export const relabelRule = z
  .strictObject({
    source_labels: z.array(labelName).default([]).meta({ description: 'Labels whose values, joined by separator, the regex is matched against.' }),
    separator: z.string().default(DEFAULT_SEPARATOR).meta({ description: 'What joins the values of source_labels (default ;).' }),
    regex: regex.prefault(DEFAULT_REGEX).meta({ description: 'RE2 syntax, anchored at both ends (as in Prometheus).' }),
    modulus: z.number().int().min(1, { error: 'modulus must be at least 1' }).optional().meta({ description: 'hashmod: the hash of the joined values is taken modulo this.' }),
    target_label: z.string().optional().meta({ description: 'The label replace, hashmod, lowercase and uppercase write; $1 and ${name} refer to the regex\'s groups in replace.' }),
    replacement: z.string().default(DEFAULT_REPLACEMENT).meta({ description: 'What replace writes to target_label (and labelmap names), with $1 or ${name} for the regex\'s groups (default $1).' }),
    action: action.prefault('replace').meta({ description: 'replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase or uppercase, as in Prometheus (default replace).' }),
  })
  .superRefine((rule, ctx) => {
    const problem = ruleProblem(rule);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

export type RelabelRule = z.output<typeof relabelRule>;

/** `relabel_configs:` on a provider block and at the top level. */
export const relabelConfigs = z.array(relabelRule).meta({
  description: 'Prometheus relabeling over the target\'s labels, __meta_* metadata, __address__, __scheme__, __metrics_path__ and __service__: see docs/relabeling.md.',
});

/** Prometheus's Config.Validate, with its messages. */
function ruleProblem(rule: RelabelRule): string | undefined {
  const a = rule.action;
  const target = rule.target_label;
  if (a === 'hashmod' && rule.modulus === undefined) return 'relabel configuration for hashmod requires non-zero modulus';
  if ((a === 'replace' || a === 'hashmod' || a === 'lowercase' || a === 'uppercase' || a === 'keepequal' || a === 'dropequal') && (target === undefined || target === '')) {
    return `relabel configuration for ${a} action requires 'target_label' value`;
  }
  if (a === 'replace' && target !== undefined && !(target.includes('$') ? NAME_WITH_REFS_RE : LABEL_NAME_RE).test(target)) return `${quote(target)} is invalid 'target_label' for ${a} action`;
  if ((a === 'lowercase' || a === 'uppercase' || a === 'keepequal' || a === 'dropequal' || a === 'hashmod') && target !== undefined && !LABEL_NAME_RE.test(target)) {
    return `${quote(target)} is invalid 'target_label' for ${a} action`;
  }
  if ((a === 'lowercase' || a === 'uppercase' || a === 'keepequal' || a === 'dropequal') && rule.replacement !== DEFAULT_REPLACEMENT) return `'replacement' can not be set for ${a} action`;
  if (a === 'labelmap' && !NAME_WITH_REFS_RE.test(rule.replacement)) return `${quote(rule.replacement)} is invalid 'replacement' for ${a} action`;
  if ((a === 'keepequal' || a === 'dropequal') && (rule.regex.source !== DEFAULT_REGEX || rule.modulus !== undefined || rule.separator !== DEFAULT_SEPARATOR)) {
    return `${a} action requires only 'source_labels' and 'target_label', and no other fields`;
  }
  if ((a === 'labeldrop' || a === 'labelkeep') && (rule.source_labels.length > 0 || target !== undefined || rule.modulus !== undefined || rule.separator !== DEFAULT_SEPARATOR || rule.replacement !== DEFAULT_REPLACEMENT)) {
    return `${a} action requires only 'regex', and no other fields`;
  }
  return undefined;
}

/** What every provider block spreads: its own rules, run before the top-level ones. */
export const relabelField = { relabel_configs: relabelConfigs.default([]) };

export type RelabelSettings = z.output<z.ZodObject<typeof relabelField>>;
