import { redactUrl } from '../redact.js';
import { hideValue, isSecretPath, pathToString, valueAt } from './issues.js';
import type { IssuePath } from './issues.js';
import type { Expansion } from './env-expansion.js';

const SECRET_SHOWN_AS = '<secret>';
/** Shorter values are hidden only in errors about their own path: elsewhere they would be common words. */
const MIN_HIDDEN_LENGTH = 3;

/**
 * What cleans an error of what it must not show: the file's secrets, and the
 * values that came from the environment (any may be a secret). At the error's
 * own path whatever their length; in any error when long enough not to be a
 * word of the message, since an alias can carry a value anywhere.
 */
export function hider(raw: unknown, expandedAt: ReadonlyMap<string, { expansion: Expansion }>, expansions: readonly Expansion[]): (path: IssuePath, message: string) => string {
  const secrets = secretValues(raw).filter((s) => s.length >= MIN_HIDDEN_LENGTH);
  const fromEnv: [string, string][] = [];
  for (const expansion of expansions) {
    fromEnv.push([expansion.value, expansion.source]);
    for (const [name, value] of expansion.vars) fromEnv.push([value, `\${${name}}`]);
  }
  const longFirst = (a: [string, string], b: [string, string]): number => b[0].length - a[0].length;
  const env = fromEnv.filter(([text]) => text.length >= MIN_HIDDEN_LENGTH).sort(longFirst);
  secrets.sort((a, b) => b.length - a.length);
  return (path, message) => {
    let out = message;
    if (isSecretPath(path)) out = hideValue(out, valueAt(raw, path), SECRET_SHOWN_AS);
    for (const s of secrets) out = hideValue(out, s, SECRET_SHOWN_AS);
    const before = out;
    const own = expandedAt.get(pathToString(path));
    if (own) out = hideExpansion(out, own.expansion, valueAt(raw, path));
    for (const [text, shownAs] of env) out = hideValue(out, text, shownAs);
    return out === before ? out : `${out} (the value comes from the environment and is not shown)`;
  };
}

/** An error about a value from ${...} names the variables, not what they hold. */
function hideExpansion(message: string, expansion: Expansion, now: unknown): string {
  let out = hideValue(message, expansion.value, expansion.source);
  out = hideValue(out, redactUrl(expansion.value), expansion.source);
  if (typeof now === 'number' || typeof now === 'boolean') out = hideValue(out, now, expansion.source);
  for (const [name, value] of expansion.vars) out = hideValue(out, value, `\${${name}}`);
  return out;
}

/** The text of every value under a secret-named key. checkShape has bounded the walk. */
function secretValues(raw: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, path: IssuePath, secret: boolean): void => {
    if (v === null || v === undefined) return;
    if (typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const childPath = [...path, Array.isArray(v) ? Number(k) : k];
        walk(child, childPath, secret || isSecretPath(childPath));
      }
    } else if (secret && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      found.add(String(v));
    }
  };
  walk(raw, [], false);
  return [...found];
}
