import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigLoadError, formatConfigError, parseConfig } from '../../src/config/index.js';
import type { ConfigError } from '../../src/config/index.js';
import { redactUrl } from '../../src/redact.js';
import { fuzzParameters } from '../helpers/fuzz.js';

// The config file is trusted, but a mistake in it must cost an error message,
// never the process. Whatever text the loader is given, it returns a config
// or a list of config errors, each with a line and column; it never throws
// anything else, never takes long, and no error quotes a secret or a value
// that came from the environment.

/** Far above what any run takes (a few ms); a loader that lost its bounds takes seconds. */
const RUN_BUDGET_MS = 2_000;

const REPO = 'repositories:\n  - directory: {path: ./p}\n';

/** The loader's answer: the error list, or [] when the text loaded. Fails on any other outcome. */
function load(text: string, env: Record<string, string> = {}): ConfigError[] {
  const started = performance.now();
  let errors: ConfigError[] = [];
  try {
    parseConfig(text, 'F', { baseDir: '/nonexistent-config-dir', env });
  } catch (err) {
    assert.ok(err instanceof ConfigLoadError, `only ConfigLoadError, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.ok(err.errors.length > 0, 'a refused config has at least one error');
    errors = [...err.errors];
  }
  const took = performance.now() - started;
  assert.ok(took < RUN_BUDGET_MS, `took ${Math.round(took)} ms`);
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const e of errors) {
    assert.ok(Number.isInteger(e.line) && e.line >= 1 && e.line <= lines + 1, `line of ${formatConfigError(e)} in ${lines} lines`);
    assert.ok(Number.isInteger(e.column) && e.column >= 1, `column of ${formatConfigError(e)}`);
    assert.equal(e.source, 'F');
  }
  return errors;
}

// ---- random text, from an alphabet that makes YAML happen often --------------------

const YAML_BITS = [
  '\n', '\n', '  ', '    ', '- ', ': ', ':', ', ', '{', '}', '[', ']', '"', "'", '#', '? ', '|', '>', '---\n', '...\n',
  '&a ', '&b ', '*a', '*b', '!!str ', '!!int ', '!!map ', '<<: ', '%YAML 1.2\n', '\\', '\t', '\r\n',
  '${X}', '${X:-d}', '$$', '${', 'scrape', 'repositories', 'discovery', 'static', 'targets', 'password', 'bearer_token',
  'directory', 'path', 'url', 'labels', 'port', 'interval', '10s', '1', '-1', '1e999', '0x1f', 'true', 'null', '~',
  'http://u:p@h', 'a', 'b', ' ',
];
const yamlish = fc.array(fc.constantFrom(...YAML_BITS), { maxLength: 60 }).map((bits) => bits.join(''));

// ---- structured YAML: nested maps and lists, anchors, aliases --------------------

const scalar = fc.oneof(
  fc.constantFrom('1', '-0', '1.10', '007', 'true', 'null', '~', '10s', '64MiB', '"${X}"', '"${X:-7}"', '"$$"', '"http://u:p@[bad"', '""', "''", 'a b'),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
);
const key = fc.oneof(fc.constantFrom('scrape', 'labels', 'port', 'password', 'targets', 'a', 'b', '"x y"', '[k]', '{k: v}'), fc.stringMatching(/^[a-z_]{1,8}$/));

/** A flow-style node that may use the anchors a0..a(anchors-1) defined before it. */
function node(anchors: number, depth: number): fc.Arbitrary<string> {
  const alias = anchors > 0 ? [fc.nat(anchors - 1).map((i) => `*a${i}`)] : [];
  const leaf = fc.oneof(scalar, ...alias);
  if (depth <= 0) return leaf;
  const child = node(anchors, depth - 1);
  return fc.oneof(
    { weight: 2, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(child, { maxLength: 9 }).map((xs) => `[${xs.join(', ')}]`) },
    { weight: 1, arbitrary: fc.array(fc.tuple(key, child), { maxLength: 5 }).map((ps) => `{${ps.map(([k, v]) => `${k}: ${v}`).join(', ')}}`) },
  );
}

/** Top-level keys each anchoring a node built on the anchors before it: alias bombs among them. */
const anchoredDocument = fc
  .integer({ min: 1, max: 10 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => node(i, 3))))
  .map((defs) => `${defs.map((d, i) => `k${i}: &a${i} ${d}`).join('\n')}\n${REPO}`);

// ---- valid-looking configs from the schema's keys --------------------------------

/** A secret's value: distinctive enough that finding it in an error cannot be chance. */
const secretValue = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9]{4,10}$/).map((s) => `Zq${s}`),
  fc.integer({ min: 1_000_000_000, max: 2_000_000_000 }),
);
/** Environment values, each a marker too; fields refer to them as ${E0}..${E2}. */
const envValues = fc.tuple(
  fc.stringMatching(/^[A-Za-z0-9]{4,10}$/).map((s) => `Ev${s}`),
  fc.integer({ min: 3_000_000_000, max: 4_000_000_000 }).map(String),
  fc.stringMatching(/^[a-z]{3,6}$/).map((s) => `http://user:Ev${s}pw@h:1`),
);
const fromEnv = fc.oneof(fc.constantFrom('${E0}', '${E1}', '${E2}', 'x-${E0}', '${E1}s', '${E9:-d}'));

/** Mostly values some key takes, so that many files load and the rest of them gets checked. */
const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { maxDepth: 2 },
    { weight: 8, arbitrary: fc.constantFrom(0, 1, 2, -1, 6060, 65536, 1.5, true, false, null, '', '10s', '90s', '0s', '1ms', '5x', '64MiB', 'lots', 'http', 'https', '/debug/pprof', '/debug/pprof/heap', 'http://h:1', 'http://u:p@[bad', '*/10 * * * *', 'a:1', '10.0.0.5:6060', 'h:99999', '/re(/', 'p', './p', '127.0.0.1:0') },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 2, arbitrary: fromEnv },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 2 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('a', 'b', 'team', 'service', 'path'), tie('value'), { maxKeys: 2 }) },
  ),
})).value;

type Shape = { [key: string]: Shape | 'value' | 'secret' | ['list', Shape | 'value'] };
const CLIENT: Shape = { tls: { ca_file: 'value', insecure_skip_verify: 'value', server_name: 'value' }, bearer_token: 'secret', bearer_token_file: 'value', basic_auth: { username: 'value', password: 'secret', password_file: 'value' } };
const TARGET: Shape = { service: 'value', labels: 'value', port: 'value', path: 'value', scheme: 'value', profiles: 'value', interval: 'value' };
const COMMON: Shape = { name: 'value', queue: { max_size: 'value', max_age: 'value' }, retry: { initial_backoff: 'value', max_backoff: 'value' }, timeout: 'value' };
const CONFIG: Shape = {
  scrape: { interval: 'value', schedule: 'value', spread: 'value', timeout: 'value', concurrency: 'value', max_profile_size: 'value', labels: 'value', ...CLIENT },
  profiles: { cpu: { path: 'value', seconds: 'value', enabled: 'value' }, heap: { path: 'value' } },
  discovery: ['list', { static: { targets: ['list', 'value'], ...TARGET, ...CLIENT }, ec2: { region: 'value', endpoint: 'value', port: 'value', ...CLIENT }, docker: { host: 'value', host_address: 'value', ...TARGET, bearer_token: 'secret' } }],
  overrides: ['list', { match: 'value', drop: 'value', ...TARGET }],
  repositories: ['list', {
    profefe: { url: 'value', headers: { Authorization: 'secret', 'X-Scope-OrgID': 'value' }, ...COMMON, ...CLIENT },
    pyroscope: { url: 'value', tenant: 'value', headers: { Authorization: 'secret' }, ...COMMON },
    directory: { path: 'value', retention: { max_age: 'value', max_size: 'value' }, ...COMMON },
    s3: { bucket: 'value', prefix: 'value', endpoint: 'value', ...COMMON },
  }],
  server: { listen: 'value', enable_reload: 'value', allowed_hosts: 'value', basic_auth: { username: 'value', password_hash: 'secret' } },
  shard: { count: 'value', index: 'value' },
  state_dir: 'value',
};

type Generated = { value: unknown; secrets: string[] };
const extraKey = fc.oneof({ weight: 15, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^[a-z_]{1,8}$/), anyValue) });
const built = new Map<unknown, fc.Arbitrary<Generated>>();

/**
 * A few of a shape's keys, each with a random value; secrets get marker
 * values, listed in `secrets`. Built once per shape: building arbitraries is
 * what costs, not drawing from them.
 */
function fromShape(shape: Shape | 'value' | 'secret' | ['list', Shape | 'value'], depth = 0): fc.Arbitrary<Generated> {
  const known = built.get(shape);
  if (known) return known;
  let arb: fc.Arbitrary<Generated>;
  if (shape === 'value') {
    arb = anyValue.map((value) => ({ value, secrets: [] }));
  } else if (shape === 'secret') {
    // a secret, or a secret-bearing value of the wrong type: a list or map holding one
    arb = fc.oneof(
      secretValue.map((s) => ({ value: s, secrets: [String(s)] })),
      secretValue.map((s) => ({ value: [s], secrets: [String(s)] })),
      secretValue.map((s) => ({ value: { k: s }, secrets: [String(s)] })),
      fromEnv.map((value) => ({ value, secrets: [] })),
    );
  } else if (Array.isArray(shape)) {
    arb = fc.array(fromShape(shape[1], depth + 1), { maxLength: 2 }).map((items) => ({ value: items.map((i) => i.value), secrets: items.flatMap((i) => i.secrets) }));
  } else {
    // each key now and then: all of them at once makes files too big to read fast
    const fields = Object.entries(shape).map(([k, sub]) => fc.oneof({ weight: depth === 0 ? 3 : 4, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fromShape(sub, depth + 1).map((v) => [k, v] as const) }));
    arb = fc.tuple(fc.tuple(...fields), extraKey).map(([picked, extra]) => {
      const value: Record<string, unknown> = {};
      const secrets: string[] = [];
      for (const field of picked) {
        if (field === null) continue;
        value[field[0]] = field[1].value;
        secrets.push(...field[1].secrets);
      }
      // now and then a key the schema does not know
      if (extra) value[extra[0]] ??= extra[1];
      return { value, secrets };
    });
  }
  built.set(shape, arb);
  return arb;
}

/** `{bearer_token:abc}`: flow style without the space after the colon makes one key of both. */
const swallowedSecret = fc.option(fc.tuple(fc.constantFrom('bearer_token:', 'password=', 'Authorization: '), secretValue), { freq: 4 });

/** A config file: mostly with a repository that works, so the rest of it is what gets checked. */
const configFile = fc.tuple(fromShape(CONFIG), fc.boolean(), swallowedSecret).map(([{ value, secrets }, withRepository, swallowed]) => {
  const config = value as Record<string, unknown>;
  if (withRepository) config['repositories'] ??= [{ directory: { path: './p' } }];
  const scrape = config['scrape'];
  if (swallowed && (scrape === undefined || (typeof scrape === 'object' && scrape !== null && !Array.isArray(scrape)))) {
    config['scrape'] = { ...scrape, [`${swallowed[0]}${swallowed[1]}`]: null };
    secrets.push(String(swallowed[1]));
  }
  return { text: stringify(config), secrets };
});

describe('config loader, fuzzed', () => {
  test('random YAML-ish text: a config or config errors with positions, never anything else', () => {
    fc.assert(
      fc.property(yamlish, (text) => {
        load(text, { X: '123' });
      }),
      fuzzParameters(2000),
    );
  });

  test('random bytes as text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        load(text);
      }),
      fuzzParameters(500),
    );
  });

  test('nested maps and lists with anchors and aliases, bombs among them: answered in time', () => {
    fc.assert(
      fc.property(anchoredDocument, (text) => {
        load(text, { X: '42' });
      }),
      fuzzParameters(600),
    );
  });

  test('configs built from the schema keys: no error shows a secret or a value from the environment', () => {
    fc.assert(
      fc.property(configFile, envValues, ({ text, secrets }, [e0, e1, e2]) => {
        const errors = load(text, { E0: e0, E1: e1, E2: e2 }).map(formatConfigError).join('\n');
        for (const hidden of [...secrets, e0, e1, 'pw@h']) assert.ok(!errors.includes(hidden), `an error shows ${hidden}:\n${errors}\n--- config:\n${text}`);
        assert.ok(!errors.includes(e2.slice('http://user:'.length)), errors);
      }),
      fuzzParameters(1000),
    );
  });

  test('redactUrl: a URL password never survives, whatever it holds', () => {
    const part = fc.string({ unit: fc.constantFrom(...'abcXYZ019-._~!$&()*+,;=:@/%'.split('')), minLength: 1, maxLength: 12 });
    const host = fc.constantFrom('h', '10.0.0.5:6060', '[::1]:80', 'profefe.internal', '[bad');
    fc.assert(
      fc.property(fc.constantFrom('http', 'https', 'tcp'), part, host, fc.constantFrom('', '/api', '/a/b?x=1'), fc.constantFrom('', ' tail', '", then', ')'), (scheme, pw, h, path, after) => {
        const secret = `Pw${pw}`;
        const shown = redactUrl(`failed: "${scheme}://user:${secret}@${h}${path}${after}`);
        assert.ok(!shown.includes(secret), shown);
      }),
      fuzzParameters(2000),
    );
  });
});
