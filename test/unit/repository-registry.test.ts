/**
 * The registry of repository kinds: each kind is one descriptor, and the
 * config schema, its JSON Schema, validation and the factory all follow it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { configJsonSchema, parseConfig } from '../../src/config/index.js';
import { createRepository, REPOSITORIES, REPOSITORY_KINDS, repositoryKindOf, repositoryNameOf } from '../../src/repositories/index.js';

/** One entry of each kind, none of which reaches a peer when built. */
const ENTRIES: Record<(typeof REPOSITORY_KINDS)[number], (dir: string) => string> = {
  profefe: () => '{url: "http://127.0.0.1:9"}',
  directory: (dir) => `{path: "${dir}"}`,
  pyroscope: () => '{url: "http://127.0.0.1:9", name: grafana}',
  s3: () => '{bucket: b, endpoint: "http://127.0.0.1:9", region: us-east-1}',
  otlp: () => '{endpoint: "http://127.0.0.1:9", protocol: grpc}',
  parca: () => '{url: "127.0.0.1:9", insecure: true}',
};

function parse(yaml: string) {
  return parseConfig(yaml, 'c.yaml', { baseDir: '.', env: {} }).config;
}

describe('the repository registry', () => {
  test('each descriptor sits under its own kind', () => {
    for (const kind of REPOSITORY_KINDS) assert.equal(REPOSITORIES[kind].kind, kind);
    assert.deepEqual(REPOSITORY_KINDS, ['profefe', 'directory', 'pyroscope', 's3', 'otlp', 'parca']);
  });

  test('a repositories: entry takes exactly the registered kinds, in the JSON Schema too', () => {
    const schema = configJsonSchema() as { properties: { repositories: { items: { properties: Record<string, unknown> } } } };
    assert.deepEqual(Object.keys(schema.properties.repositories.items.properties), [...REPOSITORY_KINDS]);
    assert.throws(() => parse('repositories:\n  - {}\n'), /a repository entry needs one kind: profefe, directory, pyroscope, s3, otlp, parca/);
  });

  test('the factory builds every kind from its block, named by name: or its kind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-registry-'));
    try {
      const config = parse(`repositories:\n${REPOSITORY_KINDS.map((k) => `  - ${k}: ${ENTRIES[k](dir)}\n`).join('')}`);
      const built = [];
      for (const entry of config.repositories) {
        const repository = await createRepository(entry);
        built.push({ kind: repository.kind, name: repository.name, entryKind: repositoryKindOf(entry), entryName: repositoryNameOf(entry) });
        await repository.close();
      }
      assert.deepEqual(built, [
        { kind: 'profefe', name: 'profefe', entryKind: 'profefe', entryName: 'profefe' },
        { kind: 'directory', name: 'directory', entryKind: 'directory', entryName: 'directory' },
        { kind: 'pyroscope', name: 'grafana', entryKind: 'pyroscope', entryName: 'grafana' },
        { kind: 's3', name: 's3', entryKind: 's3', entryName: 's3' },
        { kind: 'otlp', name: 'otlp', entryKind: 'otlp', entryName: 'otlp' },
        { kind: 'parca', name: 'parca', entryKind: 'parca', entryName: 'parca' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the AWS SDK loads only when an s3 repository is built, not with the registry, the schema or the daemon', async () => {
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).some((k) => k.includes('@aws-sdk/client-s3'));
      await import('./src/daemon.ts');
      const { configJsonSchema, parseConfig } = await import('./src/config/index.ts');
      const { createRepository } = await import('./src/repositories/index.ts');
      const { config } = parseConfig('repositories:\\n  - s3: {bucket: b, endpoint: "http://127.0.0.1:9", region: us-east-1}\\n', 'c.yaml', { baseDir: '.', env: {} });
      configJsonSchema();
      const before = loaded();
      const repository = await createRepository(config.repositories[0]);
      console.log(JSON.stringify({ before, after: loaded() }));
      await repository.close();
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname });
    assert.deepEqual(JSON.parse(stdout), { before: false, after: true });
  });

  test('the protobuf and gRPC stack loads only with an otlp, parca or pyroscope repository: nothing the daemon imports statically reaches it', async () => {
    // ESM has no require.cache to look in: follow the static imports (not `import type`, not `await import()`) from the daemon and the CLI
    const root = new URL('../..', import.meta.url).pathname;
    const seen = new Set<string>();
    const reached: string[] = [];
    const walk = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'([^']+)';/gms)) {
        const spec = m[1] ?? '';
        if (spec.startsWith('@bufbuild/') || spec.startsWith('@connectrpc/') || spec.includes('/proto/gen/')) reached.push(`${file.slice(root.length)} imports ${spec}`);
        if (spec.startsWith('.')) await walk(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      }
    };
    await walk(join(root, 'src/cli/index.ts'));
    await walk(join(root, 'src/daemon.ts'));
    assert.ok(seen.has(join(root, 'src/repositories/kinds/otlp.ts')), 'the walk reaches the otlp descriptor');
    assert.deepEqual(reached, []);
    // and the adapters do import it, behind their descriptors' create()
    reached.length = 0;
    await walk(join(root, 'src/repositories/otlp.ts'));
    assert.ok(reached.length > 0, 'the otlp adapter imports the protobuf stack');
    reached.length = 0;
    await walk(join(root, 'src/repositories/pyroscope.ts'));
    assert.ok(reached.join('\n').includes('push_pb'), `the pyroscope adapter encodes its push with the generated code: ${reached.join(', ')}`);
  });
});
