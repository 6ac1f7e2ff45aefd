import { z } from 'zod';
import { ENV_REFERENCE_PATTERN } from './env-expansion.js';
import { DURATION_TEXT, SIZE_TEXT } from './fields.js';
import { createConfigSchema } from './schema.js';
import { DURATION_GRAMMAR, SIZE_GRAMMAR } from './units.js';

// The JSON Schema of the config file, for editors: draft-07, which
// yaml-language-server (VS Code's YAML extension, Neovim's yamlls) and
// JetBrains read. It is derived from schema.ts as a whole, so a key added
// there is described here with nothing else to write; its descriptions are
// the schema's `.meta` ones, as in the option reference of
// docs/configuration.md. config.schema.json at the repository root is this,
// written by `npm run docs:config`.

type Json = Record<string, unknown>;

/** The draft editors read; zod's own default (2020-12) is one most of them do not. */
export const JSON_SCHEMA_TARGET = 'draft-07';

/** The config schema as zod converts it: the input (what a file holds), before the editor touches below. */
export function rawConfigJsonSchema(io: 'input' | 'output' = 'input'): Json {
  const schema = createConfigSchema({ baseDir: '.', checkFiles: false });
  const json: Json = z.toJSONSchema(schema, { target: JSON_SCHEMA_TARGET, io, unrepresentable: 'any' });
  return json;
}

/** The JSON Schema of the config file, for editors (`pprof-scraper schema`, config.schema.json). */
export function configJsonSchema(): Json {
  const { $schema, ...rest } = rawConfigJsonSchema('input');
  return {
    $schema,
    title: 'pprof-scraper configuration',
    description: 'The config file of pprof-scraper (`pprof-scraper check` validates it; docs/configuration.md describes every key).',
    ...forEditors(rest),
  };
}

function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typesOf(node: Json): string[] {
  const t = node['type'];
  return typeof t === 'string' ? [t] : Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The node and everything under it, as an editor should check it:
 *
 * - A value may be `${NAME}` or `${NAME:-default}`, expanded when the file
 *   is loaded (env-expansion.ts), and a number or true/false read from it
 *   there: so a typed or patterned value also accepts a string holding a
 *   reference, which the editor cannot know the value of.
 * - A duration or a size keeps its key's own description and says how it
 *   is written after it (the option reference has a type column for that).
 */
function forEditors(node: Json): Json {
  const out: Json = { ...node };
  // a union of bare types whose `type` a field's .meta states itself (a size: text or a whole number)
  const alternatives = out['anyOf'];
  if (out['type'] !== undefined && Array.isArray(alternatives) && alternatives.every((a) => isJson(a) && Object.keys(a).join() === 'type')) delete out['anyOf'];
  for (const key of ['properties', 'patternProperties', 'definitions']) {
    const map = out[key];
    if (isJson(map)) out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, isJson(v) ? forEditors(v) : v]));
  }
  for (const key of ['additionalProperties', 'items', 'not']) {
    const v = out[key];
    if (isJson(v)) out[key] = forEditors(v);
    else if (Array.isArray(v)) out[key] = v.map((x: unknown) => (isJson(x) ? forEditors(x) : x));
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const v = out[key];
    if (Array.isArray(v)) out[key] = v.map((x: unknown) => (isJson(x) ? forEditors(x) : x));
  }

  const pattern = out['pattern'];
  if (typeof pattern === 'string') {
    const unit = pattern.includes(DURATION_GRAMMAR) ? DURATION_TEXT : pattern.includes(SIZE_GRAMMAR) ? SIZE_TEXT : undefined;
    const description = out['description'];
    if (unit !== undefined) out['description'] = typeof description === 'string' && description !== unit ? `${description} ${unit}` : unit;
    out['pattern'] = `(?:${pattern})|${ENV_REFERENCE_PATTERN}`;
    return out;
  }

  const types = typesOf(out);
  const typedNotString = types.length > 0 && !types.includes('string') && types.every((t) => t === 'integer' || t === 'number' || t === 'boolean');
  if (typedNotString || ((Array.isArray(out['enum']) || 'const' in out) && !types.includes('object') && !types.includes('array'))) {
    const { description, default: fallback, title, ...value } = out;
    return {
      ...(title === undefined ? {} : { title }),
      ...(description === undefined ? {} : { description }),
      ...(fallback === undefined ? {} : { default: fallback }),
      anyOf: [value, { type: 'string', pattern: ENV_REFERENCE_PATTERN }],
    };
  }
  return out;
}
