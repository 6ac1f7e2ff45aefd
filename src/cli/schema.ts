import { configJsonSchema } from '../config/index.js';

/** `pprof-scraper schema`: the JSON Schema of the config file on stdout. */
export function schemaCommand(): number {
  process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
  return 0;
}
