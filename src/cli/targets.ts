import { once } from 'node:events';
import { formatConfigError } from '../config/index.js';
import { discoverOnce } from '../discovery/index.js';
import type { DiscoveryProblem } from '../discovery/index.js';
import { createLogger } from '../log.js';
import type { LogFormat } from '../log.js';
import { redactUrl } from '../redact.js';
import { buildTargets, droppedJson, errorJson, targetJson, targetsReport } from '../targets/index.js';
import type { BuildResult, TargetsReport } from '../targets/index.js';
import { ConfigLoadError, loadConfig } from './common.js';
import { chooseConfig, describeChoice } from './config-source.js';

export interface TargetsOptions {
  readonly config?: string | undefined;
  readonly output: string;
  readonly timeout: number;
  readonly logLevel: string;
  readonly logFormat?: LogFormat | undefined;
}

/**
 * `pprof-scraper targets`: the dry run. Discovery and overrides exactly as the
 * daemon does them, nothing scraped. Exit 0, 2 when a provider failed, 1 on a
 * bad config.
 */
export async function targetsCommand(options: TargetsOptions): Promise<number> {
  if (options.output !== 'json' && options.output !== 'table') {
    process.stderr.write(`--output ${JSON.stringify(options.output)}: use json or table\n`);
    return 1;
  }
  const logger = createLogger({ level: options.logLevel, stream: 'stderr', format: options.logFormat });
  const choice = chooseConfig(options.config);
  // stdout is the report (JSON or a table): the choice goes to the log on stderr
  if (choice.from !== 'flag') logger.info({ config: choice.path ?? '<embedded default>', from: choice.from }, `using ${describeChoice(choice)}`);
  let loaded;
  try {
    loaded = await loadConfig(choice.path);
  } catch (err) {
    if (!(err instanceof ConfigLoadError)) throw err;
    for (const e of err.errors) process.stderr.write(formatConfigError(e) + '\n');
    return 1;
  }
  const { groups, problems } = await discoverOnce(loaded.config.discovery, { logger, timeoutMs: options.timeout });
  const result = buildTargets(loaded.config, groups);
  for (const p of problems) logger.error({ provider: p.provider, source: `discovery[${p.source}]` }, redactUrl(p.error));
  // The dry run prints what discovery found and the errors providers gave,
  // any of which may hold a URL with credentials in it.
  if (options.output === 'json') await writeRedacted(process.stdout, reportJson(result, problems));
  else process.stdout.write(redactUrl(formatTable(targetsReport(result, problems))));
  return problems.length > 0 ? 2 : 0;
}

/**
 * `JSON.stringify(targetsReport(result, problems), null, 2)` and a newline,
 * one item at a time: ten thousand targets never sit in memory as one report
 * and one string of a dozen MiB.
 */
export function* reportJson(result: BuildResult, problems: readonly DiscoveryProblem[]): Generator<string> {
  yield '{\n';
  yield* jsonList('targets', result.targets, targetJson, ',');
  yield* jsonList('dropped', result.dropped, droppedJson, ',');
  yield* jsonList('errors', problems, errorJson, '');
  yield '}\n';
}

/** One top-level key of the report holding a list, indented as JSON.stringify(…, null, 2) indents it. */
function* jsonList<T>(key: string, items: readonly T[], toJson: (item: T) => unknown, comma: string): Generator<string> {
  if (items.length === 0) {
    yield `  ${JSON.stringify(key)}: []${comma}\n`;
    return;
  }
  yield `  ${JSON.stringify(key)}: [\n`;
  for (let i = 0; i < items.length; i++) {
    // JSON text holds no raw newline inside a string: every one is a line break to indent
    yield `    ${JSON.stringify(toJson(items[i] as T), null, 2).replaceAll('\n', '\n    ')}${i < items.length - 1 ? ',' : ''}\n`;
  }
  yield `  ]${comma}\n`;
}

const WRITE_CHUNK = 64 * 1024;

/** Writes the pieces in chunks of about 64 KiB, credentials in URLs masked, waiting whenever the stream asks to. */
async function writeRedacted(out: NodeJS.WritableStream, pieces: Iterable<string>): Promise<void> {
  let chunk = '';
  const flush = async (): Promise<void> => {
    // a chunk ends at a line break, and no URL spans one
    const more = out.write(redactUrl(chunk));
    chunk = '';
    if (!more) await once(out, 'drain');
  };
  for (const piece of pieces) {
    chunk += piece;
    if (chunk.length >= WRITE_CHUNK) await flush();
  }
  if (chunk !== '') await flush();
}

function formatTable(report: TargetsReport): string {
  const lines: string[] = [];
  const rows = report.targets.map((t) => [t.service, t.address, t.provider, t.interval ?? `${t.schedule ?? ''} ±${t.spread ?? ''}`, t.profiles.map((p) => p.type).join(','), t.id]);
  lines.push(...table(['SERVICE', 'ADDRESS', 'PROVIDER', 'INTERVAL', 'PROFILES', 'ID'], rows));
  lines.push('', `${report.targets.length} target${report.targets.length === 1 ? '' : 's'}`);
  const notSent = report.targets.flatMap((t) => (t.not_sent_to ?? []).map((n) => [t.service, t.address, n.repository, n.reason]));
  if (notSent.length > 0) {
    lines.push('', 'not sent to every repository (the others get their profiles):');
    lines.push(...table(['SERVICE', 'ADDRESS', 'REPOSITORY', 'REASON'], notSent));
  }
  if (report.dropped.length > 0) {
    lines.push('', `${report.dropped.length} dropped:`);
    lines.push(...table(['PROVIDER', 'ADDRESS', 'REASON'], report.dropped.map((d) => [d.provider, d.address ?? '-', d.reason])));
  }
  if (report.errors.length > 0) {
    lines.push('', `${report.errors.length} provider error${report.errors.length === 1 ? '' : 's'}:`);
    lines.push(...table(['PROVIDER', 'SOURCE', 'ERROR'], report.errors.map((e) => [e.provider, e.source, e.error])));
  }
  return lines.join('\n') + '\n';
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}
