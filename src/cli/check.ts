import { formatConfigError } from '../config/index.js';
import { ConfigLoadError, loadConfig } from './common.js';
import { chooseConfig, describeChoice } from './config-source.js';

/**
 * `pprof-scraper check`: validates the file; exit 0 or 1. Errors on stderr, the
 * verdict on stdout. Without --config it first says which config it chose and
 * why, as `run` would choose it.
 */
export async function checkCommand(options: { config?: string | undefined }): Promise<number> {
  const choice = chooseConfig(options.config);
  if (choice.from !== 'flag') process.stdout.write(`checking ${describeChoice(choice)}\n`);
  try {
    const loaded = await loadConfig(choice.path);
    const c = loaded.config;
    process.stdout.write(`${loaded.source}: valid (${c.discovery.length} discovery ${c.discovery.length === 1 ? 'entry' : 'entries'}, ${c.overrides.length} override rule${c.overrides.length === 1 ? '' : 's'}, ${c.repositories.length} ${c.repositories.length === 1 ? 'repository' : 'repositories'})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigLoadError)) throw err;
    for (const e of err.errors) process.stderr.write(formatConfigError(e) + '\n');
    process.stderr.write(`${err.errors.length} error${err.errors.length === 1 ? '' : 's'}\n`);
    process.stdout.write(`${err.errors[0]?.source ?? choice.path ?? ''}: invalid\n`);
    return 1;
  }
}
