import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Alias, Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { redactUrl } from '../redact.js';
import { createConfigSchema } from './schema.js';
import type { Config } from './schema.js';
import { crossFieldIssues } from './validate.js';
import { describeIssue, hideValue, isSecretPath, pathToDisplay, pathToString, valueAt } from './issues.js';
import type { ConfigIssue, IssuePath } from './issues.js';
import { EMBEDDED_DEFAULT_YAML } from './default.js';

/** A config that parsed and validated in full. */
export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path, or `<embedded default>`. */
  readonly source: string;
  /** sha256 of the file's text, as the config hash metric shows it. */
  readonly hash: string;
}

/** One problem in a config file, with where it is. */
export interface ConfigError {
  readonly source: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly message: string;
}

/** Every error of a file that did not load, all at once. */
export class ConfigLoadError extends Error {
  override readonly name = 'ConfigLoadError';
  readonly errors: readonly ConfigError[];

  constructor(source: string, errors: readonly ConfigError[], options?: ErrorOptions) {
    super(
      `${source}: ${errors.length} error${errors.length === 1 ? '' : 's'} in the config\n` + errors.map(formatConfigError).join('\n'),
      options,
    );
    this.errors = errors;
  }
}

export function formatConfigError(e: ConfigError): string {
  const where = `${e.source}:${e.line}:${e.column}`;
  return e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`;
}

export const EMBEDDED_SOURCE = '<embedded default>';

export interface LoadOptions {
  /** Environment for ${NAME} expansion; process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
}

// The config is trusted, but a mistake in it (the wrong file, a generated
// anchor gone wild) must cost an error message, not the process. Real
// configs are a few KB, nest a dozen levels and use aliases a few times.

/** The largest config file read: past it, the YAML parser alone takes hundreds of MiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Values that aliases may add to the document, all aliases together (a YAML alias bomb adds billions). */
export const MAX_ALIAS_VALUES = 100_000;
/** Levels of nesting, counted through aliases. */
export const MAX_DEPTH = 100;

/** Reads, parses and validates a config file. Throws ConfigLoadError with every problem found. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const read = await readConfigText(path);
  if ('error' in read) throw new ConfigLoadError(path, [read.error], { cause: read.cause });
  return parseConfig(read.text, path, { ...options, baseDir: dirname(resolve(path)) });
}

/**
 * The text of a config file, or why there is none. Reads at most
 * MAX_CONFIG_BYTES and one more, so `--config /dev/zero` or a log file
 * given by mistake is refused without being held in memory.
 */
export async function readConfigText(path: string): Promise<{ text: string } | { error: ConfigError; cause: unknown }> {
  const at = (message: string, cause: unknown): { error: ConfigError; cause: unknown } => ({ error: { source: path, line: 1, column: 1, path: '', message }, cause });
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > MAX_CONFIG_BYTES) return at(tooLarge(), undefined);
    return { text: buf.subarray(0, filled).toString('utf8') };
  } catch (err) {
    return at(`cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function tooLarge(): string {
  return `the file is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB, the most a config may be: check that --config names the config file`;
}

/** The config `run` uses when no file is given. */
export function loadEmbeddedDefault(options: LoadOptions = {}): LoadedConfig {
  return parseConfig(EMBEDDED_DEFAULT_YAML, EMBEDDED_SOURCE, { ...options, baseDir: process.cwd() });
}

/** Parses and validates config text. Throws ConfigLoadError with every problem found, and nothing else. */
export function parseConfig(text: string, source: string, options: LoadOptions & { baseDir: string }): LoadedConfig {
  try {
    return parseChecked(text, source, options);
  } catch (err) {
    if (err instanceof ConfigLoadError) throw err;
    // Whatever a file makes the YAML library or the schema throw is still a
    // problem of that file: report it as one, never as a crash.
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new ConfigLoadError(source, [{ source, line: 1, column: 1, path: '', message: redactUrl(`the config could not be read (${what.split('\n')[0] ?? ''}): please report this with the file`) }], { cause: err });
  }
}

function parseChecked(text: string, source: string, options: LoadOptions & { baseDir: string }): LoadedConfig {
  const fail = (line: number, column: number, path: string, message: string): never => {
    throw new ConfigLoadError(source, [{ source, line, column, path, message: redactUrl(message) }]);
  };
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) fail(1, 1, '', tooLarge());

  const lineCounter = new LineCounter();
  // logLevel: the library would print its own warnings on stderr, past the config errors
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const errors: ConfigError[] = [];
  const at = (offset: number | undefined): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };

  // After the first syntax error the parser's view of the rest is guesswork.
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = at(syntax.pos[0]);
    const message = syntax.message.includes('call stack') ? `the YAML nests too deeply: at most ${MAX_DEPTH} levels` : `YAML syntax: ${syntax.message}`;
    fail(pos.line, pos.column, '', message);
  }

  const shape = checkShape(doc);
  if (shape.problem) {
    const { node, path, message } = shape.problem;
    const pos = at(node.range?.[0]);
    fail(pos.line, pos.column, pathToDisplay(path), message);
  }

  const expansions = new Map<YamlNode, Expansion>();
  const missing = new Map<YamlNode, string>();
  expandEnv(doc, options.env ?? process.env, expansions, missing);
  // An aliased scalar shows up at every path that refers to it.
  const paths = pathsOf(doc, new Set([...expansions.keys(), ...missing.keys()]), shape.aliasTargets);
  const expandedAt = new Map<string, { path: IssuePath; expansion: Expansion }>();
  for (const [node, expansion] of expansions) {
    for (const path of paths.get(node) ?? []) expandedAt.set(pathToString(path), { path, expansion });
  }
  const unexpanded = new Set<string>();
  for (const [node, message] of missing) {
    const nodePaths = paths.get(node) ?? [];
    for (const path of nodePaths) unexpanded.add(pathToString(path));
    errors.push({ source, ...at(node.range?.[0]), path: pathToDisplay(nodePaths[0] ?? []), message });
  }

  // checkShape bounds what aliases add far below this; the library's own
  // count is kept as a second guard, loose enough not to refuse what it let through.
  const raw: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_VALUES * 10 }) ?? {};
  const issues: ConfigIssue[] = [];
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    issues.push({ path: [], message: 'the config must be a YAML map (scrape:, discovery:, repositories: ...)' });
  } else {
    const schema = configSchemaFor(options.baseDir);
    let result = schema.safeParse(raw);
    if (!result.success && coerceExpanded(raw, result.error.issues, expandedAt)) result = schema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) issues.push(...describeIssue(issue, raw, schema));
    }
    issues.push(...crossFieldIssues(raw as Record<string, unknown>, options.baseDir));
    if (issues.length === 0 && errors.length === 0 && result.success) {
      return { config: result.data, source, hash: createHash('sha256').update(text).digest('hex') };
    }
  }

  const hide = hider(raw, expandedAt, [...expansions.values()]);
  for (const issue of issues) {
    const path = pathToString(issue.path);
    // a value whose ${VAR} is missing already has its error
    if (unexpanded.has(path)) continue;
    const { node, keyNode } = nodeAt(doc, issue.path, issue.onKey ?? false);
    errors.push({ source, ...at((keyNode ?? node)?.range?.[0]), path: pathToDisplay(issue.path), message: hide(issue.path, issue.message) });
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  throw new ConfigLoadError(source, dedupe(errors.map((e) => ({ ...e, message: redactUrl(e.message) }))));
}

// zod compiles a schema the first time it parses with it, which costs forty
// times the parse: one schema per config folder, built once. Files are
// checked at parse time, so a cached schema sees them as they are now.
let cachedSchema: { baseDir: string; schema: ReturnType<typeof createConfigSchema> } | undefined;

function configSchemaFor(baseDir: string): ReturnType<typeof createConfigSchema> {
  if (cachedSchema?.baseDir !== baseDir) cachedSchema = { baseDir, schema: createConfigSchema({ baseDir, checkFiles: true }) };
  return cachedSchema.schema;
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = formatConfigError(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

interface Shape {
  /** What each alias refers to: the last node with its anchor before it. */
  readonly aliasTargets: Map<Alias, YamlNode>;
  readonly problem?: { node: YamlNode; path: IssuePath; message: string } | undefined;
}

/**
 * Walks the document once, in the order aliases resolve, and measures what
 * it becomes once every alias is replaced by its anchor's value: how many
 * values the aliases add, and how deep it nests. Refuses, with the place,
 * what would be too big to convert (an alias bomb), too deep to walk, or
 * impossible: an alias with no anchor before it, a value that contains
 * itself, a list or map as a key.
 */
function checkShape(doc: Document): Shape {
  interface Anchored {
    readonly node: YamlNode;
    /** Undefined while the anchored node is still being walked. */
    measure?: { size: number; height: number };
  }
  const anchors = new Map<string, Anchored>();
  const aliasTargets = new Map<Alias, YamlNode>();
  let added = 0;
  let problem: Shape['problem'];
  const refuse = (node: YamlNode, path: IssuePath, message: string): { size: number; height: number } => {
    problem ??= { node, path, message };
    return { size: 0, height: 0 };
  };
  const measure = (node: unknown, path: IssuePath, depth: number, isKey: boolean): { size: number; height: number } => {
    if (problem || !isNode(node)) return { size: 0, height: 0 };
    if (depth > MAX_DEPTH) return refuse(node, path, `nested deeper than ${MAX_DEPTH} levels: a config needs a dozen at most`);
    if (isAlias(node)) {
      const anchored = anchors.get(node.source);
      if (!anchored) return refuse(node, path, `alias *${node.source} has no anchor &${node.source} before it`);
      if (!anchored.measure) return refuse(node, path, `alias *${node.source} is inside the value of its own anchor &${node.source}: a value cannot contain itself`);
      if (isKey && !isScalar(anchored.node)) return refuse(node, path, `a key must be a plain value; alias *${node.source} is a ${isSeq(anchored.node) ? 'list' : 'map'}`);
      aliasTargets.set(node, anchored.node);
      added += anchored.measure.size;
      if (added > MAX_ALIAS_VALUES) {
        return refuse(node, path, `aliases expand the config by more than ${MAX_ALIAS_VALUES} values (nested anchors, as in a "billion laughs" YAML bomb): use fewer aliases, or write the values out`);
      }
      if (depth + anchored.measure.height > MAX_DEPTH) return refuse(node, path, `alias *${node.source} nests the config deeper than ${MAX_DEPTH} levels`);
      return anchored.measure;
    }
    if (isKey && !isScalar(node)) return refuse(node, path, `a key must be a plain value, not a ${isSeq(node) ? 'list' : 'map'}`);
    let anchored: Anchored | undefined;
    if (node.anchor) {
      anchored = { node };
      anchors.set(node.anchor, anchored);
    }
    let size = 1;
    let height = 0;
    const add = (m: { size: number; height: number }): void => {
      size += m.size;
      height = Math.max(height, m.height);
    };
    if (isMap(node)) {
      for (const pair of node.items) {
        add(measure(pair.key, path, depth + 1, true));
        add(measure(pair.value, [...path, keyName(pair.key)], depth + 1, false));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => add(measure(item, [...path, i], depth + 1, false)));
    }
    const result = { size, height: height + 1 };
    if (anchored) anchored.measure = result;
    return result;
  };
  measure(doc.contents, [], 0, false);
  return { aliasTargets, problem };
}

function keyName(key: unknown): string {
  return isScalar(key) ? String(key.value) : '?';
}

/** Every path at which each wanted node appears, through aliases. checkShape has bounded the walk. */
function pathsOf(doc: Document, wanted: ReadonlySet<YamlNode>, aliasTargets: ReadonlyMap<Alias, YamlNode>): Map<YamlNode, IssuePath[]> {
  const found = new Map<YamlNode, IssuePath[]>();
  if (wanted.size === 0) return found;
  const walk = (node: unknown, path: IssuePath): void => {
    if (isAlias(node)) {
      walk(aliasTargets.get(node), path);
      return;
    }
    if (!isNode(node)) return;
    if (wanted.has(node)) {
      const paths = found.get(node);
      if (paths) paths.push(path);
      else found.set(node, [path]);
    }
    if (isMap(node)) for (const pair of node.items) walk(pair.value, [...path, keyName(pair.key)]);
    else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
  };
  walk(doc.contents, []);
  return found;
}

/** What one ${...} expansion made of a value: enough to hide it again in an error. */
interface Expansion {
  /** The value as written, `${TOKEN}`. */
  readonly source: string;
  readonly value: string;
  /** Each variable used, with its value. */
  readonly vars: readonly (readonly [string, string])[];
}

const ENV_RE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Expands ${NAME} and ${NAME:-default} in string values; `$$` is a literal
 * `$`. The result is always a string, whatever it looks like: a token of
 * digits stays a string. coerceExpanded turns it into a number or true/false
 * only where the schema asks for one.
 */
function expandEnv(doc: Document, env: NodeJS.ProcessEnv, expansions: Map<YamlNode, Expansion>, missing: Map<YamlNode, string>): void {
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
function coerceExpanded(raw: object, issues: readonly z.core.$ZodIssue[], expandedAt: ReadonlyMap<string, { path: IssuePath }>, prefix: IssuePath = []): boolean {
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

const SECRET_SHOWN_AS = '<secret>';
/** Shorter values are hidden only in errors about their own path: elsewhere they would be common words. */
const MIN_HIDDEN_LENGTH = 3;

/**
 * What cleans an error of what it must not show: the file's secrets, and the
 * values that came from the environment (any may be a secret). At the error's
 * own path whatever their length; in any error when long enough not to be a
 * word of the message, since an alias can carry a value anywhere.
 */
function hider(raw: unknown, expandedAt: ReadonlyMap<string, { expansion: Expansion }>, expansions: readonly Expansion[]): (path: IssuePath, message: string) => string {
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

function nodeAt(doc: Document, path: IssuePath, onKey: boolean): { node: YamlNode | undefined; keyNode: YamlNode | undefined } {
  let node: unknown = doc.contents;
  let keyNode: YamlNode | undefined;
  let last: YamlNode | undefined = doc.contents ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    keyNode = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key as YamlNode;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      break;
    }
    if (node && typeof node === 'object' && 'range' in node) last = node as YamlNode;
    else if (keyNode && i === path.length - 1) last = keyNode;
  }
  return { node: last, keyNode: onKey ? keyNode : undefined };
}
