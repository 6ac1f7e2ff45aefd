import { visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { pathToString, valueAt } from './issues.js';
import type { IssuePath } from './issues.js';

/** What one ${...} expansion made of a value: enough to hide it again in an error. */
export interface Expansion {
  /** The value as written, `${TOKEN}`. */
  readonly source: string;
  readonly value: string;
  /** Each variable used, with its value. */
  readonly vars: readonly (readonly [string, string])[];
}

const ENV_NAME = '[A-Za-z_][A-Za-z0-9_]*';
const ENV_RE = new RegExp(`\\$\\$|\\$\\{(${ENV_NAME})(?::-([^}]*))?\\}`, 'g');

/** `${NAME}` or `${NAME:-default}` as a JSON Schema pattern: a value holding one is known only when the file is loaded. */
export const ENV_REFERENCE_PATTERN = `\\$\\{${ENV_NAME}(?::-[^}]*)?\\}`;

/**
 * Expands ${NAME} and ${NAME:-default} in string values; `$$` is a literal
 * `$`. The result is always a string, whatever it looks like: a token of
 * digits stays a string. coerceExpanded turns it into a number or true/false
 * only where the schema asks for one.
 */
export function expandEnv(doc: Document, env: NodeJS.ProcessEnv, expansions: Map<YamlNode, Expansion>, missing: Map<YamlNode, string>): void {
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const source = node.value;
      let unset: string | undefined;
      const vars: [string, string][] = [];
      const expanded = source.replace(ENV_RE, (whole, name: string | undefined, fallback: string | undefined) => {
        if (whole === '$$') return '$';
        const value = env[name ?? ''];
        const used = value !== undefined && value !== '' ? value : fallback;
        if (used === undefined) {
          unset ??= name;
          return '';
        }
        vars.push([name ?? '', used]);
        return used;
      });
      if (unset !== undefined) {
        missing.set(node, `environment variable ${unset} is not set (give it a value, or a default with \${${unset}:-default})`);
        return;
      }
      if (expanded === source) return;
      node.value = expanded;
      if (vars.length > 0) expansions.set(node, { source, value: expanded, vars });
    },
  });
}

const NUMBER_RE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const BOOLEAN_RE = /^(true|True|TRUE|false|False|FALSE)$/;

/**
 * Where the schema wants a number or true/false and got a string that came
 * from ${...}, reads the string as one (`port: ${PORT}`), as Docker Compose
 * does. Returns whether anything changed, so the schema runs again.
 */
export function coerceExpanded(raw: object, issues: readonly z.core.$ZodIssue[], expandedAt: ReadonlyMap<string, { path: IssuePath }>, prefix: IssuePath = []): boolean {
  let changed = false;
  for (const issue of issues) {
    const path: IssuePath = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'invalid_union') {
      for (const branch of issue.errors) changed = coerceExpanded(raw, branch, expandedAt, path) || changed;
      continue;
    }
    if (issue.code === 'invalid_element' || issue.code === 'invalid_key') {
      changed = coerceExpanded(raw, issue.issues, expandedAt, path) || changed;
      continue;
    }
    if (issue.code !== 'invalid_type' || !expandedAt.has(pathToString(path))) continue;
    const parent = valueAt(raw, path.slice(0, -1));
    const key = path[path.length - 1];
    if (parent === null || typeof parent !== 'object' || key === undefined) continue;
    const holder = parent as Record<string | number, unknown>;
    const text = holder[key];
    if (typeof text !== 'string') continue;
    if ((issue.expected === 'number' || issue.expected === 'int') && NUMBER_RE.test(text.trim())) {
      holder[key] = Number(text.trim());
      changed = true;
    } else if (issue.expected === 'boolean' && BOOLEAN_RE.test(text.trim())) {
      holder[key] = text.trim().toLowerCase() === 'true';
      changed = true;
    }
  }
  return changed;
}
