import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { redactUrl } from '../redact.js';
import { coerceExpanded, expandEnv } from './env-expansion.js';
import type { Expansion } from './env-expansion.js';
import { hider } from './hide-secrets.js';
import { createConfigSchema } from './schema.js';
import type { Config } from './schema.js';
import { crossFieldIssues } from './validate.js';
import { describeIssue, pathToDisplay, pathToString } from './issues.js';
import type { ConfigIssue, IssuePath } from './issues.js';
import { EMBEDDED_DEFAULT_YAML } from './default.js';
import { checkShape, MAX_ALIAS_VALUES, MAX_DEPTH, nodeAt, pathsOf } from './yaml-shape.js';

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
// configs are a few KB, nest a dozen levels and use aliases a few times
// (yaml-shape.ts bounds the aliases and the nesting).

/** The largest config file read: past it, the YAML parser alone takes hundreds of MiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

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

