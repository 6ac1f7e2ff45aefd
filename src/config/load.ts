import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, parse as parseYaml, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { createConfigSchema } from './schema.js';
import type { Config } from './schema.js';
import { crossFieldIssues } from './validate.js';
import { describeIssue, pathToString } from './issues.js';
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

/** Reads, parses and validates a config file. Throws ConfigLoadError with every problem found. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigLoadError(path, [{ source: path, line: 1, column: 1, path: '', message: `cannot read the config file: ${code}` }], { cause: err });
  }
  return parseConfig(text, path, { ...options, baseDir: dirname(resolve(path)) });
}

/** The config `run` uses when no file is given. */
export function loadEmbeddedDefault(options: LoadOptions = {}): LoadedConfig {
  return parseConfig(EMBEDDED_DEFAULT_YAML, EMBEDDED_SOURCE, { ...options, baseDir: process.cwd() });
}

export function parseConfig(text: string, source: string, options: LoadOptions & { baseDir: string }): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const errors: ConfigError[] = [];
  const at = (offset: number | undefined): { line: number; column: number } => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };

  // After the first syntax error the parser's view of the rest is guesswork.
  const syntax = doc.errors[0];
  if (syntax) throw new ConfigLoadError(source, [{ source, ...at(syntax.pos[0]), path: '', message: `YAML syntax: ${syntax.message}` }]);

  const unexpanded = new Set<string>();
  expandEnv(doc, options.env ?? process.env, (node, message) => {
    const path = pathToString(pathOfNode(doc, node));
    unexpanded.add(path);
    errors.push({ source, ...at(node.range?.[0]), path, message });
  });

  const raw: unknown = doc.toJS() ?? {};
  const issues: ConfigIssue[] = [];
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    issues.push({ path: [], message: 'the config must be a YAML map (scrape:, discovery:, repositories: ...)' });
  } else {
    const schema = createConfigSchema({ baseDir: options.baseDir, checkFiles: true });
    const result = schema.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) issues.push(...describeIssue(issue, raw, schema));
    }
    issues.push(...crossFieldIssues(raw as Record<string, unknown>, options.baseDir));
    if (issues.length === 0 && errors.length === 0 && result.success) {
      return { config: result.data, source, hash: createHash('sha256').update(text).digest('hex') };
    }
  }

  for (const issue of issues) {
    // a value whose ${VAR} is missing already has its error
    if (unexpanded.has(pathToString(issue.path))) continue;
    const { node, keyNode } = nodeAt(doc, issue.path, issue.onKey ?? false);
    errors.push({ source, ...at((keyNode ?? node)?.range?.[0]), path: pathToString(issue.path), message: issue.message });
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  throw new ConfigLoadError(source, dedupe(errors));
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

const ENV_RE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Expands ${NAME} and ${NAME:-default} in string values; `$$` is a literal `$`.
 * An unquoted value is re-read as YAML after expansion, so `port: ${PORT}` is a number.
 */
function expandEnv(doc: Document, env: NodeJS.ProcessEnv, fail: (node: YamlNode, message: string) => void): void {
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const source = node.value;
      let missing: string | undefined;
      const expanded = source.replace(ENV_RE, (whole, name: string | undefined, fallback: string | undefined) => {
        if (whole === '$$') return '$';
        const value = env[name ?? ''];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        missing ??= name;
        return '';
      });
      if (missing !== undefined) {
        fail(node, `environment variable ${missing} is not set (give it a value, or a default with \${${missing}:-default})`);
        return;
      }
      if (expanded === source) return;
      if (node.type === 'PLAIN') {
        try {
          const reread: unknown = parseYaml(expanded);
          node.value = typeof reread === 'number' || typeof reread === 'boolean' ? reread : expanded;
          return;
        } catch {
          // not a scalar on its own: keep the text
        }
      }
      node.value = expanded;
    },
  });
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

function pathOfNode(doc: Document, target: YamlNode): IssuePath {
  const walk = (node: unknown, path: IssuePath): IssuePath | undefined => {
    if (node === target) return path;
    if (isMap(node)) {
      for (const pair of node.items) {
        const found = walk(pair.value, [...path, isScalar(pair.key) ? String(pair.key.value) : '?']);
        if (found) return found;
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const found = walk(node.items[i], [...path, i]);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(doc.contents, []) ?? [];
}
