import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { parse } from 'yaml';
import { configJsonSchema, parseConfig, parseDuration, parseSize } from '../../src/config/index.js';
import { DURATION_TEXT, SIZE_TEXT } from '../../src/config/fields.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { quickstartConfigs } from '../helpers/quickstart-doc.js';

// The published JSON Schema, checked by a real draft-07 validator (ajv), as
// an editor checks a file: the shipped configs pass it, broken ones fail it
// as the daemon fails them, its duration and size patterns take what the
// parser takes, and every key says what it is for.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Config files a user is shown: each must pass the schema and the daemon's own check. */
const CONFIG_FILES = ['config.example.yaml'];
/** And the configs docs/quickstart-ec2.md has the reader write, as they stand after each of its config blocks. */
const SHOWN_CONFIGS = [...CONFIG_FILES.map((file) => ({ name: file, text: readFileSync(join(ROOT, file), 'utf8') })), ...quickstartConfigs()];

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const schema = configJsonSchema();
// strict: every keyword the schema uses must be one draft-07 knows (a
// `type` list, as a size's text or number, is draft-07 too: ajv only lints
// it), but for the one editors read in place of quoting a pattern
const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addKeyword({ keyword: 'patternErrorMessage', schemaType: 'string' });
const validate = ajv.compile(schema);

function errorsOf(check: ValidateFunction, value: unknown): string {
  return check(value) ? '' : ajv.errorsText(check.errors);
}

/** The subschema of a key, by its path through `properties`. */
function at(...keys: string[]): Json {
  let node: unknown = schema;
  for (const key of keys) {
    node = isJson(node) && isJson(node['properties']) ? node['properties'][key] : undefined;
    assert.ok(isJson(node), `the schema has no ${keys.join('.')}`);
  }
  return node as Json;
}

/** Whether the daemon's loader takes the text, and its first error. */
function daemonCheck(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfig(text, 'test.yaml', { baseDir: ROOT, env });
    return '';
  } catch (err) {
    return (err as Error).message || 'refused';
  }
}

void test('the schema is draft-07, the draft yaml-language-server reads', () => {
  assert.equal(schema['$schema'], 'http://json-schema.org/draft-07/schema#');
  assert.equal(typeof schema['title'], 'string');
});

void test('config.schema.json at the repository root is the schema the code gives (npm run docs:config writes it)', () => {
  const file = JSON.parse(readFileSync(join(ROOT, 'config.schema.json'), 'utf8')) as unknown;
  assert.deepEqual(file, schema, 'config.schema.json is not current: run npm run docs:config and commit the result');
});

describe('the config files a user is given pass the schema and the daemon', () => {
  assert.ok(SHOWN_CONFIGS.length > CONFIG_FILES.length, 'the quickstart shows no config');
  for (const { name, text } of SHOWN_CONFIGS) {
    void test(name, () => {
      assert.equal(errorsOf(validate, parse(text)), '', `${name} fails the JSON Schema`);
      assert.equal(daemonCheck(text), '', `${name} fails the daemon's own check`);
    });
  }
});

/** The schema a `# yaml-language-server: $schema=…` line names, or undefined when the text has none. */
function modelineTarget(text: string): string | undefined {
  return /^#\s*yaml-language-server:\s*\$schema=(\S+)\s*$/m.exec(text)?.[1];
}

void test('a yaml-language-server line names the schema file, relative to the file that holds it', () => {
  // the README shows the line for a config.yaml at the root of a clone
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const shown = modelineTarget(readme);
  assert.ok(shown !== undefined, 'README.md shows no yaml-language-server line');
  const named: [string, string][] = [['README.md (a config.yaml at the root)', join(ROOT, shown)]];
  for (const file of CONFIG_FILES) {
    const target = modelineTarget(readFileSync(join(ROOT, file), 'utf8'));
    if (target !== undefined) named.push([file, join(dirname(join(ROOT, file)), target)]);
  }
  for (const [where, path] of named) {
    assert.ok(existsSync(path), `${where}: ${path} does not exist`);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), schema, `${where}: ${path} is not the config's JSON Schema`);
  }
});

const REPO = 'repositories:\n  - directory: {path: ./p}\n';

// Each refused by the schema and by the daemon alike.
const invalid: { name: string; yaml: string }[] = [
  { name: 'a duration without a unit', yaml: `scrape:\n  interval: 60\n${REPO}` },
  { name: 'a duration in words', yaml: `scrape:\n  interval: 10 seconds\n${REPO}` },
  { name: 'a fractional duration', yaml: `scrape:\n  timeout: 1.5s\n${REPO}` },
  { name: 'a zero timeout', yaml: `scrape:\n  timeout: 0s\n${REPO}` },
  { name: 'a zero queue age', yaml: 'repositories:\n  - directory: {path: ./p, queue: {max_age: 0m}}\n' },
  { name: 'a size with an unknown unit', yaml: `scrape:\n  max_profile_size: 64XB\n${REPO}` },
  { name: 'a size of zero', yaml: `scrape:\n  max_profile_size: 0MiB\n${REPO}` },
  { name: 'a size as a fraction of a byte', yaml: `scrape:\n  max_profile_size: 0.5\n${REPO}` },
  { name: 'a negative size', yaml: `scrape:\n  max_profile_size: -1\n${REPO}` },
  { name: 'an unknown top-level key', yaml: `scarpe: {}\n${REPO}` },
  { name: 'an unknown key under scrape', yaml: `scrape:\n  intervall: 10s\n${REPO}` },
  { name: 'an unknown key in a provider block', yaml: `discovery:\n  - ec2: {regoin: eu-west-1}\n${REPO}` },
  { name: 'an unknown key in a repository block', yaml: 'repositories:\n  - directory: {path: ./p, retension: {max_age: 7d}}\n' },
  { name: 'an unknown provider kind', yaml: `discovery:\n  - consul: {}\n${REPO}` },
  { name: 'a string where a number goes', yaml: `scrape:\n  concurrency: many\n${REPO}` },
  { name: 'a word where true/false goes', yaml: `server:\n  enable_reload: yes please\n${REPO}` },
  { name: 'a list where a map goes', yaml: `scrape:\n  labels: [a, b]\n${REPO}` },
  { name: 'a scheme that is not one', yaml: `discovery:\n  - static: {targets: [a:1], scheme: ftp}\n${REPO}` },
  { name: 'no repositories', yaml: 'scrape: {interval: 10s}\n' },
  { name: 'a repository without its required key', yaml: 'repositories:\n  - s3: {prefix: p/}\n' },
];

describe('broken configs fail the schema as they fail the daemon', () => {
  for (const { name, yaml } of invalid) {
    void test(name, () => {
      assert.notEqual(daemonCheck(yaml), '', 'the daemon takes it: the case is wrong');
      assert.notEqual(errorsOf(validate, parse(yaml)), '', 'the JSON Schema takes it');
    });
  }
});

void test('a value from ${NAME} passes the schema wherever the daemon reads one (numbers and true/false included)', () => {
  const yaml = [
    'scrape:',
    '  interval: ${INTERVAL:-30s}',
    '  concurrency: ${CONCURRENCY}',
    '  max_profile_size: ${MAX_SIZE}',
    'discovery:',
    '  - static:',
    '      targets: ["${TARGET}"]',
    '      port: ${PORT}',
    '      scheme: ${SCHEME}',
    'server:',
    '  enable_reload: ${RELOAD}',
    REPO,
  ].join('\n');
  const env = { CONCURRENCY: '8', MAX_SIZE: '16MiB', TARGET: '10.0.0.5', PORT: '7070', SCHEME: 'https', RELOAD: 'true' };
  assert.equal(daemonCheck(yaml, env), '');
  assert.equal(errorsOf(validate, parse(yaml)), '');
  // the reference must be one: a bare $ or an unclosed brace is still checked
  assert.notEqual(errorsOf(validate, parse(`scrape:\n  interval: $INTERVAL\n${REPO}`)), '');
  assert.notEqual(errorsOf(validate, parse(`scrape:\n  concurrency: \${N\n${REPO}`)), '');
});

// --- the patterns take what the parser takes ------------------------------

const durationSamples = [
  '250ms', '10s', '5m', '1h', '7d', '2w', '1h30m', '1m30s500ms', '0s', '0ms', '00m', '0h0m', '100000000000s', '1s1s', '5m1h',
  '', ' 10s', '10s ', '10', '1.5h', '1 h', '10S', '1y', '-5s', 'ms', 's10', '1hm', '10sec', '5mins', '1h 30m', '10s\n',
];
const sizeSamples = [
  '64MiB', '512KiB', '10GiB', '1TiB', '1KB', '1MB', '1GB', '1TB', '1B', '1', '1024', '1.5KiB', '0.5KiB', '64 MiB', ' 64MiB ', '1.5', '007',
  '0', '0B', '0MiB', '00', '0.0KiB', '0.5', '0.9B', '', ' ', '64mib', '64Mb', '64 M', '1.KiB', '.5KiB', '-1', '+1', '1e3', '64MiBs', 'KiB', '1,024', '0x10',
];

// A duration the schema's own subschema takes vs one the parser takes (and its refinement).
const durationChecks = [
  { key: 'scrape.spread', subschema: at('scrape', 'spread'), parser: (t: string) => parseDuration(t) !== undefined },
  { key: 'scrape.timeout', subschema: at('scrape', 'timeout'), parser: (t: string) => (parseDuration(t) ?? 0) > 0 },
];
const sizeCheck = { key: 'scrape.max_profile_size', subschema: at('scrape', 'max_profile_size'), parser: (t: string | number) => (parseSize(t) ?? 0) > 0 };

void test('a duration pattern takes exactly the durations the parser takes, both ways', () => {
  for (const { key, subschema, parser } of durationChecks) {
    const check = ajv.compile(subschema);
    const disagree = durationSamples.filter((s) => check(s) !== parser(s));
    assert.deepEqual(disagree, [], `${key}: the schema and the parser disagree on these`);
    assert.ok(durationSamples.some((s) => parser(s)) && durationSamples.some((s) => !parser(s)));
  }
});

void test('the size pattern takes exactly the sizes the parser takes, both ways, text and numbers', () => {
  const check = ajv.compile(sizeCheck.subschema);
  const samples: (string | number)[] = [...sizeSamples, 1, 1024, 0, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2];
  const disagree = samples.filter((s) => check(s) !== sizeCheck.parser(s));
  assert.deepEqual(disagree, [], 'the schema and the parser disagree on these');
  // the one known difference (fields.ts): a fraction of a unit that rounds down to no byte
  assert.deepEqual([check('0.0001KiB'), sizeCheck.parser('0.0001KiB')], [true, false]);
});

void test('duration and size patterns agree with the parser on random text of their alphabet', () => {
  const durationChecker = durationChecks.map((c) => ({ ...c, check: ajv.compile(c.subschema) }));
  const sizeChecker = ajv.compile(sizeCheck.subschema);
  const token = fc.constantFrom('0', '1', '5', '9', '.', ' ', 'ms', 's', 'm', 'h', 'd', 'w', 'B', 'KB', 'KiB', 'MiB', 'GiB', 'i', 'x', '-');
  const text = fc.array(token, { maxLength: 6 }).map((parts) => parts.join(''));
  fc.assert(
    fc.property(text, (t) => {
      for (const { check, parser } of durationChecker) assert.equal(check(t), parser(t), `duration ${JSON.stringify(t)}`);
      // the known difference aside (a fraction of a unit that rounds to no byte)
      if (!/^\s*0*\.\d*\s*[KMGT]/.test(t)) assert.equal(sizeChecker(t), sizeCheck.parser(t), `size ${JSON.stringify(t)}`);
    }),
    fuzzParameters(3000),
  );
});

// --- descriptions ---------------------------------------------------------

/** Every key of every object the schema describes: `properties` entries and a map's value schema, with their paths. */
function keysOf(node: unknown, path: string, out: { path: string; node: Json }[] = []): { path: string; node: Json }[] {
  if (!isJson(node)) return out;
  const props = node['properties'];
  if (isJson(props)) {
    for (const [key, sub] of Object.entries(props)) {
      if (isJson(sub)) out.push({ path: path === '' ? key : `${path}.${key}`, node: sub });
      keysOf(sub, path === '' ? key : `${path}.${key}`, out);
    }
  }
  const values = node['additionalProperties'];
  if (isJson(values) && isJson(values['properties'])) {
    out.push({ path: `${path}.<name>`, node: values });
  }
  keysOf(values, `${path}.<name>`, out);
  const items = node['items'];
  keysOf(items, `${path}[]`, out);
  for (const alt of [...(Array.isArray(node['anyOf']) ? node['anyOf'] : []), ...(Array.isArray(node['oneOf']) ? node['oneOf'] : [])]) keysOf(alt, path, out);
  return out;
}

void test('every key in the schema has a description of its own', () => {
  const keys = keysOf(schema, '');
  assert.ok(keys.length > 150, `only ${keys.length} keys found: is the walk right?`);
  const missing = keys
    .filter(({ node }) => {
      const d = node['description'];
      // a duration or size with only its unit's text says how to write it, not what it is for
      return typeof d !== 'string' || d.trim() === '' || d === DURATION_TEXT || d === SIZE_TEXT;
    })
    .map(({ path }) => path);
  assert.deepEqual(missing, [], 'these keys have no description: give them one with .meta({ description }) where the schema defines them');
});
