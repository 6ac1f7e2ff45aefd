import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { skipWithoutDecoder } from '../helpers/otlp-decoder.js';

// The generated code under src/proto/gen/ is committed: it must be what
// scripts/proto-refresh.sh makes of the vendored .proto files under proto/,
// so an edited proto (or generated file) without the other fails here.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), await readFile(path, 'utf8'));
  }
  return out;
}

void test('src/proto/gen is what scripts/proto-refresh.sh --generate makes of proto/', { skip: await skipWithoutDecoder() }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'pprof-scraper-proto-gen-'));
  try {
    await promisify(execFile)('sh', ['scripts/proto-refresh.sh', '--generate'], { cwd: ROOT, env: { ...process.env, PROTO_GEN_OUT: out } });
    const made = await files(out);
    const committed = await files(join(ROOT, 'src/proto/gen'));
    assert.deepEqual([...committed.keys()].sort(), [...made.keys()].sort(), 'the same files');
    for (const [name, text] of made) assert.ok(committed.get(name) === text, `src/proto/gen/${name} differs from what the script generates: run scripts/proto-refresh.sh --generate and commit`);
    assert.ok(made.has('push/v1/push_pb.ts') && made.has('opentelemetry/proto/profiles/v1development/profiles_pb.ts'));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
