import type { Logger } from 'pino';
import { ConfigLoadError, loadConfigFile, loadEmbeddedDefault } from '../config/index.js';
import type { LoadedConfig } from '../config/index.js';

export interface GlobalOptions {
  readonly logLevel: string;
}

/** The file chooseConfig picked (--config, $PPROF_SCRAPER_CONFIG, the system file), or the embedded default. */
export async function loadConfig(path: string | undefined): Promise<LoadedConfig> {
  return path === undefined ? loadEmbeddedDefault() : loadConfigFile(path);
}

/** Logs every config error, one line each, with file:line:column. */
export function logConfigErrors(logger: Logger, err: ConfigLoadError): void {
  for (const e of err.errors) {
    logger.error({ file: e.source, line: e.line, column: e.column, path: e.path }, e.message);
  }
}

export { ConfigLoadError };
