import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigLoadError, formatConfigError, parseConfig } from '../../src/config/index.js';
import type { LoadedConfig } from '../../src/config/index.js';

// Section "Secrets in output" of docs/security.md: a value from ${...} keeps
// its type (a string), and no config error quotes a secret, a value from the
// environment, or the password of a URL.

const REPO = 'repositories:\n  - directory: {path: ./p}\n';

function load(yaml: string, env: Record<string, string> = {}): LoadedConfig {
  return parseConfig(yaml, 'F', { baseDir: '.', env });
}

/** The error lines of a file that must not load. */
function errorsOf(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    load(yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigLoadError, `expected ConfigLoadError, got ${String(err)}`);
    return err.errors.map(formatConfigError);
  }
  assert.fail('the config loaded');
}

describe('${...} expansion keeps the type', () => {
  test('a token of digits into a secret field is a string: it loads', () => {
    // was: "expected a string, got number 123456", the token in the error
    const c = load(`scrape:\n  bearer_token: \${TOKEN}\n${REPO}`, { TOKEN: '123456' }).config;
    assert.equal(c.scrape.bearer_token?.reveal(), '123456');
  });

  test('digits into string fields stay as written: no lost zeros, no 1.10 read as 1.1', () => {
    const c = load(`scrape:\n  labels:\n    version: \${V}\n    build: \${B}\ndiscovery:\n  - static:\n      service: \${SVC}\n      targets: [a:1]\n${REPO}`, { V: '1.10', B: '007', SVC: '0123' }).config;
    assert.deepEqual(c.scrape.labels, { version: '1.10', build: '007' });
    assert.equal(c.discovery[0]?.static?.service, '0123');
  });

  test('where the schema wants a number or true/false, the string is read as one', () => {
    const c = load(
      `scrape:\n  concurrency: \${C}\n  tls:\n    insecure_skip_verify: \${SKIP}\ndiscovery:\n  - ec2:\n      port: \${PORT}\n  - static:\n      targets:\n        - address: a\n          port: "\${PORT}"\n${REPO}`,
      { C: '8', SKIP: 'true', PORT: '7070' },
    ).config;
    assert.equal(c.scrape.concurrency, 8);
    assert.equal(c.scrape.tls?.insecure_skip_verify, true);
    assert.equal(c.discovery[0]?.ec2?.port, 7070);
    assert.deepEqual(c.discovery[1]?.static?.targets, [{ address: 'a', port: 7070 }]);
  });
});

describe('no config error shows a secret', () => {
  const cases: { name: string; yaml: string; env?: Record<string, string>; secret: string; errors: string[] }[] = [
    {
      name: 'a number as a password',
      yaml: `scrape:\n  basic_auth: {username: u, password: 98765432}\n${REPO}`,
      secret: '98765432',
      errors: ['F:2:39: scrape.basic_auth.password: expected a string, got a number (not shown: it is a secret)'],
    },
    {
      name: 'a string where basic_auth wants a map',
      yaml: `scrape:\n  basic_auth: hunter2-pw\n${REPO}`,
      secret: 'hunter2-pw',
      errors: ['F:2:15: scrape.basic_auth: expected a map, got a string (not shown: it is a secret)'],
    },
    {
      name: 'a list as a bearer token',
      yaml: `discovery:\n  - docker:\n      bearer_token:\n        - tok-abcdef\n${REPO}`,
      secret: 'tok-abcdef',
      errors: ['F:4:9: discovery[0].docker.bearer_token: expected a string, got a list'],
    },
    {
      name: 'a number as a header value (Authorization)',
      yaml: 'repositories:\n  - pyroscope:\n      url: http://h:4040\n      headers: {X-Api-Key: 5551234567}\n',
      secret: '5551234567',
      errors: ['F:4:28: repositories[0].pyroscope.headers.X-Api-Key: expected a string, got a number (not shown: it is a secret)'],
    },
    {
      name: 'a value from the environment is named, not shown',
      yaml: `scrape:\n  timeout: \${TIMEOUT}\n${REPO}`,
      env: { TIMEOUT: 'abc-123-secretish' },
      secret: 'abc-123-secretish',
      errors: ['F:2:12: scrape.timeout: "${TIMEOUT}" is not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h or 7d (the value comes from the environment and is not shown)'],
    },
    {
      name: 'a number from the environment out of range',
      yaml: `discovery:\n  - ec2:\n      port: \${PORT}\n${REPO}`,
      env: { PORT: '99999' },
      secret: '99999',
      errors: ['F:3:13: discovery[0].ec2.port: port ${PORT} is out of range 1..65535 (the value comes from the environment and is not shown)'],
    },
    {
      name: 'a value from the environment reached through an alias',
      yaml: `discovery:\n  - ec2:\n      service: &svc \${SVC}\n  - docker:\n      port: *svc\n${REPO}`,
      env: { SVC: 'billing-2f9c' },
      secret: 'billing-2f9c',
      errors: ['F:5:13: discovery[1].docker.port: expected a port number, got the string "${SVC}" (the value comes from the environment and is not shown)'],
    },
    {
      name: 'a key that swallowed its value (no space after the colon, in flow style)',
      yaml: `scrape: {bearer_token:s3cret-tok}\n${REPO}`,
      secret: 's3cret-tok',
      errors: ['F:1:10: scrape.bearer_token:<secret>: unknown key "bearer_token:<secret>" (did you mean "bearer_token"?)'],
    },
    {
      name: 'a repository URL that does not parse',
      yaml: 'repositories:\n  - profefe: {url: "http://user:s3cret-pw@[bad"}\n',
      secret: 's3cret-pw',
      errors: ['F:2:20: repositories[0].profefe.url: "http://user:***@[bad" is not an http:// or https:// URL'],
    },
    {
      name: 'a repository URL with credentials is refused',
      yaml: 'repositories:\n  - pyroscope: {url: "https://user:s3cret-pw@profiles.example.com"}\n',
      secret: 's3cret-pw',
      errors: ['F:2:22: repositories[0].pyroscope.url: "https://user:***@profiles.example.com" has credentials in it, which logs would show: remove them (profefe and pyroscope take basic_auth or bearer_token_file)'],
    },
    {
      name: 'a static target written user:password@host',
      yaml: `discovery:\n  - static: {targets: ["admin:s3cret-pw@10.0.0.6:6060"]}\n${REPO}`,
      secret: 's3cret-pw',
      errors: ['F:2:24: discovery[0].static.targets[0]: host "admin:***@10.0.0.6" is not a hostname or IP address'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const errors = errorsOf(c.yaml, c.env);
      assert.ok(!errors.join('\n').includes(c.secret), errors.join('\n'));
      assert.deepEqual(errors, c.errors);
    });
  }
});
