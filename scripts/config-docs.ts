// Writes the option reference of docs/configuration.md from the config file's
// JSON Schema, so the table cannot say something the schema does not, and the
// JSON Schema itself to config.schema.json for editors (and the package).
//
//   npm run docs:config
//
// The table lies between the BEGIN and END markers; everything else in the
// file is prose and is left alone. test/unit/docs-config.test.ts fails when
// the file holds another table than this script writes, and
// test/unit/config-json-schema.test.ts when config.schema.json is not current.
//
// Defaults come from the input JSON Schema (what a user writes). Zod leaves
// the default out there when the value is transformed (a duration becomes
// milliseconds, a size bytes), so for those the output JSON Schema's default
// is read and written back in the units a user writes.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { configJsonSchema, formatDuration, formatSize } from '../src/config/index.js';
import { DURATION_TEXT, SIZE_TEXT } from '../src/config/fields.js';
import { rawConfigJsonSchema } from '../src/config/json-schema.js';
import { DURATION_GRAMMAR, SIZE_GRAMMAR } from '../src/config/units.js';

export const CONFIG_DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
/** The published JSON Schema: `# yaml-language-server: $schema=…` in a config file points here. */
export const CONFIG_SCHEMA = fileURLToPath(new URL('../config.schema.json', import.meta.url));
export const BEGIN = '<!-- BEGIN option reference: written by npm run docs:config from the config schema; not edited by hand -->';
export const END = '<!-- END option reference -->';

type Json = Record<string, unknown>;

export interface OptionRow {
  /** `scrape.interval`, `discovery[].ec2.port`, `profiles.<name>.path` */
  readonly path: string;
  readonly type: string;
  /** As written in the file; '' when there is none. */
  readonly default: string;
  readonly required: boolean;
  readonly description: string;
}

function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function child(node: Json | undefined, key: string): Json | undefined {
  const v = node?.[key];
  return isJson(v) ? v : undefined;
}

type Unit = 'duration' | 'size' | undefined;

// A duration is written as a string and read as milliseconds; a size is
// written as a string or a number and read as bytes. Each one's pattern holds
// the parser's grammar (src/config/fields.ts).
function unitOf(input: Json): Unit {
  const pattern = input['pattern'];
  if (typeof pattern !== 'string') return undefined;
  if (pattern.includes(DURATION_GRAMMAR)) return 'duration';
  if (pattern.includes(SIZE_GRAMMAR)) return 'size';
  return undefined;
}

function typeOf(input: Json, output: Json | undefined): string {
  const unit = unitOf(input);
  if (unit) return unit;
  const alternatives = input['anyOf'] ?? input['oneOf'];
  if (Array.isArray(alternatives)) return alternatives.filter(isJson).map((a) => typeOf(a, undefined)).join(' or ');
  if (Array.isArray(input['enum'])) return `one of ${input['enum'].map((v) => `\`${String(v)}\``).join(', ')}`;
  const type = input['type'];
  if (Array.isArray(type)) return type.join(' or ');
  if (type === 'array') {
    const items = child(input, 'items');
    if (!items) return 'list';
    const inner = typeOf(items, child(output, 'items'));
    return `list of ${inner.includes(' or ') ? `(${inner})` : inner}`;
  }
  if (type === 'object') {
    const values = child(input, 'additionalProperties');
    if (values && !isJson(input['properties'])) {
      const inner = Object.keys(values).length === 0 ? 'any' : typeOf(values, child(output, 'additionalProperties'));
      return `map of ${inner.includes(' or ') ? `(${inner})` : inner}`;
    }
    return 'object';
  }
  if (type === 'integer' || type === 'number') {
    const min = input['minimum'];
    return typeof min === 'number' ? `${type} ≥ ${min}` : String(type);
  }
  return typeof type === 'string' ? type : 'any';
}

function valueText(v: unknown): string {
  if (typeof v === 'string') return v === '' ? '""' : v;
  if (Array.isArray(v)) return `[${v.map(valueText).join(', ')}]`;
  if (isJson(v)) {
    const entries = Object.entries(v);
    if (entries.length === 0) return '{}';
    // a default map of maps (the profile types) reads best as its keys
    if (entries.every(([, inner]) => isJson(inner))) return entries.map(([k]) => k).join(', ');
    return `{${entries.map(([k, inner]) => `${k}: ${valueText(inner)}`).join(', ')}}`;
  }
  return String(v);
}

function defaultOf(input: Json, output: Json | undefined): string {
  if ('default' in input) return valueText(input['default']);
  if (output && 'default' in output) {
    const v = output['default'];
    const unit = unitOf(input);
    if (unit === 'duration' && typeof v === 'number') return formatDuration(v);
    if (unit === 'size' && typeof v === 'number') return formatSize(v);
    return valueText(v);
  }
  return '';
}

function descriptionText(input: Json, output: Json | undefined): string {
  const d = input['description'] ?? output?.['description'];
  // the units of durations and sizes are explained once, above the table
  if (typeof d !== 'string' || d === DURATION_TEXT || d === SIZE_TEXT) return '';
  return d;
}

/** Every option of the config file, parent before children, in the schema's order. */
export function optionRows(): OptionRow[] {
  const input = rawConfigJsonSchema('input');
  const output = rawConfigJsonSchema('output');
  const rows: OptionRow[] = [];

  const walk = (inNode: Json, outNode: Json | undefined, path: string, required: boolean): void => {
    if (path !== '') {
      rows.push({ path, type: typeOf(inNode, outNode), default: defaultOf(inNode, outNode), required, description: descriptionText(inNode, outNode) });
    }
    descend(inNode, outNode, path);
  };

  // Children of a node, without a row for the node itself (list items, union members).
  const descend = (inNode: Json, outNode: Json | undefined, path: string): void => {
    const props = child(inNode, 'properties');
    if (props) {
      const req = Array.isArray(inNode['required']) ? (inNode['required'] as unknown[]) : [];
      const outProps = child(outNode, 'properties');
      for (const [key, sub] of Object.entries(props)) {
        if (isJson(sub)) walk(sub, child(outProps, key), path === '' ? key : `${path}.${key}`, req.includes(key));
      }
    }
    const values = child(inNode, 'additionalProperties');
    if (values && child(values, 'properties')) walk(values, child(outNode, 'additionalProperties'), `${path}.<name>`, false);
    const items = child(inNode, 'items');
    if (items) descend(items, child(outNode, 'items'), `${path}[]`);
    const alternatives = inNode['anyOf'] ?? inNode['oneOf'];
    if (Array.isArray(alternatives)) for (const alt of alternatives.filter(isJson)) descend(alt, undefined, path);
  };

  walk(input, output, '', false);
  return rows;
}

/** The page that describes the options under `path`: a section of configuration.md, or a kind's own page. */
function pageOf(path: string): { group: string; link: string } {
  const kind = /^(discovery|repositories)\[\]\.([^.[]+)/.exec(path);
  if (kind) return { group: `${kind[1]}[].${kind[2]}`, link: `${kind[1] === 'discovery' ? 'discovery' : 'repositories'}/${kind[2]}.md` };
  const top = /^[^.[]+/.exec(path)?.[0] ?? path;
  return { group: top, link: `#${top}` };
}

const cell = (text: string): string => text.replace(/\s+/g, ' ').replace(/\|/g, '\\|');
const code = (text: string): string => (text === '' ? '' : `\`${text.replace(/\|/g, '\\|')}\``);

/** The reference as markdown: one table per top-level key, and per provider and repository kind. */
export function renderReference(rows: readonly OptionRow[] = optionRows()): string {
  const groups = new Map<string, { link: string; rows: OptionRow[] }>();
  for (const row of rows) {
    const { group, link } = pageOf(row.path);
    const g = groups.get(group) ?? { link, rows: [] };
    g.rows.push(row);
    groups.set(group, g);
  }
  const out: string[] = [];
  for (const [group, g] of groups) {
    out.push(`**\`${group}\`**, described in [${g.link.startsWith('#') ? group : g.link}](${g.link}):`, '', '| option | type | default | description |', '|---|---|---|---|');
    for (const r of g.rows) {
      out.push(`| ${code(r.path)} | ${cell(r.type)} | ${r.default === '' ? (r.required ? 'required' : '') : code(r.default)} | ${cell(r.description)} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

/** config.schema.json as it is written: the published JSON Schema, indented, with a final newline. */
export function schemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** `doc` with the text between its markers replaced by `reference`. */
export function withReference(doc: string, reference: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md must hold the markers\n${BEGIN}\n${END}\nin this order: the option reference goes between them`);
  return `${doc.slice(0, start + BEGIN.length)}\n\n${reference}\n\n${doc.slice(end)}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const before = readFileSync(CONFIG_DOC, 'utf8');
  const after = withReference(before, renderReference());
  if (after !== before) writeFileSync(CONFIG_DOC, after);
  process.stdout.write(`${CONFIG_DOC}: ${after === before ? 'already current' : 'option reference written'} (${optionRows().length} options)\n`);
  const schemaBefore = existsSync(CONFIG_SCHEMA) ? readFileSync(CONFIG_SCHEMA, 'utf8') : '';
  const schemaAfter = schemaText();
  if (schemaAfter !== schemaBefore) writeFileSync(CONFIG_SCHEMA, schemaAfter);
  process.stdout.write(`${CONFIG_SCHEMA}: ${schemaAfter === schemaBefore ? 'already current' : 'written'}\n`);
}
