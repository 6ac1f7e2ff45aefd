import { z } from 'zod';
import { createConfigSchema } from './schema.js';

/** The JSON Schema of the config file, for editors (`pprof-scraper schema`). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = createConfigSchema({ baseDir: '.', checkFiles: false });
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...json,
    title: 'pprof-scraper configuration',
  };
}
