import { z } from 'zod';

export type IssuePath = readonly (string | number)[];

/** Records a problem at a path: how the checks across fields report. */
export type AddIssue = (path: IssuePath, message: string) => void;

/** A map of the config file as YAML gave it, before the schema. */
export type RawMap = Record<string, unknown>;

export function isMap(v: unknown): v is RawMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A problem found in the parsed YAML, before it has a line and column. */
export interface ConfigIssue {
  readonly path: IssuePath;
  readonly message: string;
  /** Point at the key rather than the value (unknown keys). */
  readonly onKey?: boolean;
}

/** `discovery[1].ec2.port` */
export function pathToString(path: IssuePath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Words that make a key hold a credential (`password`, `bearer_token`, `basic_auth`, `password_hash`...). */
const SECRET_WORDS = 'password|passwd|token|secret|auth|credential|api_?key|private_?key';
const SECRET_KEY_RE = new RegExp(SECRET_WORDS, 'i');
const KEY_WITH_VALUE_RE = new RegExp(`^([^:=\\s]*(?:${SECRET_WORDS})[^:=\\s]*)(\\s*[:=]\\s*)\\S`, 'i');

/**
 * A key that swallowed its secret value (`{bearer_token:abc}` in flow style,
 * where YAML needs a space after the colon) shown without it.
 */
export function maskKey(key: string): string {
  const m = KEY_WITH_VALUE_RE.exec(key);
  return m ? `${m[1] ?? ''}${m[2] ?? ''}<secret>` : key;
}

/** A path as an error shows it: as pathToString, with no secret a key swallowed. */
export function pathToDisplay(path: IssuePath): string {
  return pathToString(path.map((seg) => (typeof seg === 'string' ? maskKey(seg) : seg)));
}

export function valueAt(raw: unknown, path: IssuePath): unknown {
  let v: unknown = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
  record: 'a map',
};

type Issue = z.core.$ZodIssue;

/**
 * Whether an error at this path is about a credential, so it must not quote
 * the value: under a secret-named key, or a header value (Authorization).
 * `*_file` keys hold paths, not secrets.
 */
export function isSecretPath(path: IssuePath): boolean {
  const last = path[path.length - 1];
  if (typeof last === 'string' && last.endsWith('_file')) return false;
  return path.some((seg, i) => typeof seg === 'string' && (SECRET_KEY_RE.test(seg) || (seg === 'headers' && i >= path.length - 2)));
}

/** A value as an error shows it: `the string "x"`, `number 3`, `a map`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}

/** The kind of a value and nothing of it: for errors about secrets. */
function describeKind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `a ${typeof v} (not shown: it is a secret)`;
}

/**
 * `message` with every mention of `value` replaced by `shownAs`: the quoted
 * form anywhere, the bare form where it stands as a word of its own (or
 * anywhere, when it is long).
 */
export function hideValue(message: string, value: unknown, shownAs: string): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return message;
  const text = String(value);
  if (text === '') return message;
  const quoted = message.split(JSON.stringify(text)).join(JSON.stringify(shownAs));
  // a long value is no word of a message: hide it wherever it stands, even inside another
  if (text.length >= 8) return quoted.split(text).join(shownAs);
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // not inside a `${NAME}` already put there, nor inside a longer word or number
  return quoted.replace(new RegExp(`(?<![\\w.-]|\\$\\{)${escaped}(?![\\w]|\\.\\w)`, 'g'), () => shownAs);
}

/** Turns one zod issue into messages an operator reads: what, where, the offending value (never a secret's). */
export function describeIssue(issue: Issue, raw: unknown, schema: z.ZodType, prefix: IssuePath = []): ConfigIssue[] {
  const path: IssuePath = [...prefix, ...(issue.path as (string | number)[])];
  const value = valueAt(raw, path);
  const describeInput = isSecretPath(path) ? describeKind : describeValue;
  switch (issue.code) {
    case 'invalid_type': {
      const key = path[path.length - 1];
      if (value === undefined && typeof key === 'string') {
        return [{ path: path.slice(0, -1), message: `missing required key ${JSON.stringify(key)}` }];
      }
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      return [{ path, message: `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${describeInput(value)}` }];
    }
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, path);
      return issue.keys.map((key) => {
        const shown = maskKey(key);
        const guess = closest(shown === key ? key : shown.slice(0, shown.search(/\s*[:=]/)), known);
        const hint = guess ? ` (did you mean ${JSON.stringify(guess)}?)` : known.length > 0 && known.length <= 12 ? ` (known keys: ${known.join(', ')})` : '';
        return { path: [...path, key], message: `unknown key ${JSON.stringify(shown)}${hint}`, onKey: true };
      });
    }
    case 'invalid_union': {
      const branches = issue.errors;
      const fitting = branches.filter((b) => !b.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      const chosen = fitting.length === 1 ? fitting[0] : undefined;
      if (chosen) return chosen.flatMap((i) => describeIssue(i, raw, schema, path));
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      const expected = branches.map((b) => b.find((i) => i.code === 'invalid_type')).map((i) => (i?.code === 'invalid_type' ? TYPE_WORDS[i.expected] ?? i.expected : 'something else'));
      return [{ path, message: `expected ${[...new Set(expected)].join(' or ')}, got ${describeInput(value)}` }];
    }
    case 'invalid_key':
      return issue.issues.map((i) => ({ path, message: i.message, onKey: true }));
    case 'invalid_element':
      return issue.issues.flatMap((i) => describeIssue(i, raw, schema, path));
    case 'invalid_value':
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      return [{ path, message: `${describeInput(value)} is not one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` }];
    case 'too_small':
    case 'too_big':
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      return [{ path, message: `${describeInput(value)} is too ${issue.code === 'too_small' ? 'small' : 'big'}: ${issue.message}` }];
    default:
      return [{ path, message: isDefaultMessage(issue.message) ? `${issue.message} (got ${describeInput(value)})` : issue.message }];
  }
}

function isDefaultMessage(message: string): boolean {
  return /^(Invalid|Too (small|big)|Unrecognized)/.test(message);
}

/** What a schema node stands for when looking up keys: wrappers, a transform's input and a union's options seen through. */
function unwrap(s: z.ZodType): z.ZodType[] {
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodReadonly || s instanceof z.ZodCatch) {
    return unwrap(s.unwrap() as z.ZodType);
  }
  if (s instanceof z.ZodPipe) return unwrap((s.in instanceof z.ZodTransform ? s.out : s.in) as z.ZodType);
  if (s instanceof z.ZodUnion) return (s.options as readonly z.ZodType[]).flatMap(unwrap);
  return [s];
}

/** The keys the schema knows at a path, for "did you mean". */
export function knownKeysAt(schema: z.ZodType, path: IssuePath): string[] {
  let nodes = unwrap(schema);
  for (const seg of path) {
    const next: z.ZodType[] = [];
    for (const n of nodes) {
      const field = n instanceof z.ZodObject && typeof seg === 'string' ? (n.shape as Record<string, z.ZodType | undefined>)[seg] : undefined;
      if (field) next.push(...unwrap(field));
      else if (n instanceof z.ZodArray && typeof seg === 'number') next.push(...unwrap(n.element as z.ZodType));
      else if (n instanceof z.ZodRecord) next.push(...unwrap(n.valueType as z.ZodType));
    }
    nodes = next;
  }
  const keys = new Set<string>();
  for (const n of nodes) {
    if (n instanceof z.ZodObject) for (const k of Object.keys(n.shape)) keys.add(k);
  }
  return [...keys];
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  // optimal string alignment: a transposition ("intreval") counts as one edit
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}
