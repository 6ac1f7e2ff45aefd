import assert from 'node:assert/strict';
import {test} from 'node:test';
import {PeerMissingError, REQUIRE_PEERS_ENV, requirePeer} from '../helpers/peers.js';

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env[REQUIRE_PEERS_ENV];
  if (value === undefined) delete process.env[REQUIRE_PEERS_ENV];
  else process.env[REQUIRE_PEERS_ENV] = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env[REQUIRE_PEERS_ENV];
    else process.env[REQUIRE_PEERS_ENV] = saved;
  }
}

void test('a present peer runs the test', () => {
  assert.equal(withEnv(undefined, () => requirePeer('go', true, 'unused')), false);
  assert.equal(withEnv('1', () => requirePeer('docker', true, 'unused')), false);
});

void test('a missing peer skips with a reason that says what to install', () => {
  const reason = withEnv(undefined, () => requirePeer('go', false, 'go not found on PATH'));
  assert.equal(reason, "needs Go (Debian's golang-go): go not found on PATH");
  assert.match(String(withEnv('0', () => requirePeer('chromium', false, 'no binary'))), /^needs Chromium .*: no binary$/);
});

void test('PPROF_SCRAPER_REQUIRE_PEERS=1 turns a missing peer into an error', () => {
  assert.throws(
    () => withEnv('1', () => requirePeer('docker', false, 'connect ENOENT /var/run/docker.sock')),
    (err: unknown) =>
      err instanceof PeerMissingError &&
      err.peer === 'docker' &&
      /requires a Docker engine.*missing: connect ENOENT \/var\/run\/docker\.sock/.test(err.message),
  );
});
