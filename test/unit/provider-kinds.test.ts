/**
 * Every provider kind's block is found by the one list of kinds: a block's
 * own credentials go to its targets whatever its kind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROVIDER_KINDS, providerOf } from '../../src/config/index.js';
import { clientSettingsFor } from '../../src/http/index.js';
import { config } from '../helpers/targets.js';

const BLOCKS: Record<(typeof PROVIDER_KINDS)[number], string> = {
  static: '{targets: ["127.0.0.1:6060"], bearer_token: tok-static}',
  ec2: '{region: eu-west-1, bearer_token: tok-ec2}',
  docker: '{bearer_token: tok-docker}',
  file: '{files: [targets.json], bearer_token: tok-file}',
  http: '{url: "http://127.0.0.1:1/sd", endpoint: {bearer_token: tok-endpoint}, bearer_token: tok-http}',
  dns: '{names: [_pprof._tcp.example.com], bearer_token: tok-dns}',
};

void test('each provider kind: its block is found, and its own credentials reach its targets', () => {
  for (const kind of PROVIDER_KINDS) {
    const c = config(`scrape: {bearer_token: tok-scrape}\ndiscovery:\n  - ${kind}: ${BLOCKS[kind]}`);
    const entry = c.discovery[0];
    assert.ok(entry);
    assert.equal(providerOf(entry)?.kind, kind);
    assert.equal(clientSettingsFor(c, 0).bearer_token?.reveal(), `tok-${kind}`, kind);
  }
});
