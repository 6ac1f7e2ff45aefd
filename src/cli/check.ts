import { formatConfigError } from '../config/index.js';
import { ConfigLoadError, loadConfig } from './common.js';

/** `pprof-scraper check`: validates the file; exit 0 or 1. Errors on stderr, the verdict on stdout. */
export async function checkCommand(options: { config?: string | undefined }): Promise<number> {
  try {
    const loaded = await loadConfig(options.config);
    const c = loaded.config;
    process.stdout.write(`${loaded.source}: valid (${c.discovery.length} discovery ${c.discovery.length === 1 ? 'entry' : 'entries'}, ${c.overrides.length} override rule${c.overrides.length === 1 ? '' : 's'}, ${c.repositories.length} ${c.repositories.length === 1 ? 'repository' : 'repositories'})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigLoadError)) throw err;
    for (const e of err.errors) process.stderr.write(formatConfigError(e) + '\n');
    process.stderr.write(`${err.errors.length} error${err.errors.length === 1 ? '' : 's'}\n`);
    process.stdout.write(`${err.errors[0]?.source ?? options.config ?? ''}: invalid\n`);
    return 1;
  }
}
