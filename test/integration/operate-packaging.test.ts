import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configJsonSchema, loadConfigFile } from '../../src/config/index.js';

// The container image cannot be built here (no registry), so its Dockerfile
// is checked as far as it can be without one; the HEALTHCHECK command runs for
// real. And config.example.yaml: valid, and naming every option.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    if (!pending) start = i + 1;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const m = /^(\S+)\s*(.*)$/.exec(pending)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
    pending = '';
  });
  return out;
}

/** Docker's .dockerignore rules: the last pattern matching a path or one of its parent folders decides. */
function ignoredByDockerignore(patterns: string[], path: string): boolean {
  const toRe = (p: string): RegExp =>
    new RegExp(
      '^' +
        p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\/?/g, '<<any>>')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/<<any>>/g, '.*') +
        '$',
    );
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRe(posix.normalize(negate ? raw.slice(1) : raw).replace(/^\/+/, ''));
    if (prefixes.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

function jsonArray(text: string): string[] {
  const v: unknown = JSON.parse(text);
  assert.ok(Array.isArray(v) && v.every((s): s is string => typeof s === 'string'), `exec form expected: ${text}`);
  return v;
}

test('the Dockerfile: official Node slim stages, every COPY source exists, non-root, healthcheck, stop signal, the built CLI as entrypoint', () => {
  const text = read('Dockerfile');
  const ins = parseDockerfile(text);
  const ignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
  const tsconfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string; rootDir: string } };

  // ARG defaults resolve the FROM lines
  const args = new Map<string, string>();
  for (const i of ins.filter((i) => i.op === 'ARG')) {
    const [k, v] = i.args.split('=');
    if (k && v) args.set(k, v);
  }
  const stages: { name: string | undefined; image: string; workdir: string; copied: Set<string>; runs: string[] }[] = [];
  let stage: (typeof stages)[number] | undefined;
  for (const i of ins) {
    if (i.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args)!;
      const image = m[1]!.replace(/\$\{(\w+)\}/g, (_, n: string) => args.get(n) ?? '');
      assert.match(image, /^node:\d+-(bookworm|bullseye|trixie)-slim$/, `line ${i.line}: an official Node LTS slim image, got ${image}`);
      assert.ok(Number(/^node:(\d+)/.exec(image)![1]) % 2 === 0, 'an LTS (even) Node major');
      stage = { name: m[2], image, workdir: '/', copied: new Set(), runs: [] };
      stages.push(stage);
      continue;
    }
    if (i.op === 'ARG') continue;
    assert.ok(stage, `line ${i.line}: ${i.op} before FROM`);
    if (i.op === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, i.args);
    if (i.op === 'RUN') stage.runs.push(i.args);
    if (i.op === 'COPY' || i.op === 'ADD') {
      assert.equal(i.op, 'COPY', `line ${i.line}: COPY, not ADD`);
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      const dest = paths.pop()!;
      for (const src of paths) {
        if (from === undefined) {
          // from the build context: it exists in the repo and .dockerignore lets it through
          assert.ok(existsSync(join(ROOT, src)), `line ${i.line}: COPY ${src}: no such file in the repository`);
          assert.equal(ignoredByDockerignore(ignore, src.replace(/\/$/, '')), false, `line ${i.line}: COPY ${src}: .dockerignore leaves it out of the context`);
          if (statSync(join(ROOT, src)).isDirectory()) {
            const inside = readdirSync(join(ROOT, src), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
            assert.ok(inside.length > 0);
            for (const e of inside) {
              const rel = posix.join(posix.relative(ROOT, e.parentPath), e.name);
              assert.equal(ignoredByDockerignore(ignore, rel), false, `.dockerignore leaves ${rel} out`);
            }
          }
          stage.copied.add(posix.resolve(stage.workdir, paths.length > 1 || dest.endsWith('/') ? posix.join(dest, posix.basename(src)) : dest));
        } else {
          // from a build stage: something copied into it, or made there by a RUN
          const source = stages.find((s) => s.name === from);
          assert.ok(source, `line ${i.line}: --from=${from} names no earlier stage`);
          const abs = posix.resolve(source.workdir, src);
          const rel = posix.relative(source.workdir, abs);
          const made =
            [...source.copied].some((c) => abs === c || abs.startsWith(`${c}/`)) ||
            (rel === 'node_modules' && source.runs.some((r) => /\bnpm ci\b/.test(r))) ||
            (rel === tsconfig.compilerOptions.outDir && source.runs.some((r) => /\bnpm (ci|run build)\b/.test(r)) && /\bnpm run build\b/.test(pkg.scripts['prepare'] ?? ''));
          assert.ok(made, `line ${i.line}: COPY --from=${from} ${src}: the ${from} stage neither copies nor builds it`);
          stage.copied.add(posix.resolve(stage.workdir, dest));
        }
      }
    }
  }
  assert.ok(stages.length >= 2, 'multi-stage');
  const runtime = stages.at(-1)!;
  const inRuntime = ins.slice(ins.findLastIndex((i) => i.op === 'FROM'));
  assert.ok(!inRuntime.some((i) => i.op === 'COPY' && /\b(src|test|bench)\b/.test(i.args.split(/\s+/).filter((w) => !w.startsWith('--'))[0] ?? '') && !i.args.includes('--from')), 'the runtime stage gets no sources');

  // the entrypoint runs the built CLI: package.json's bin, emitted by tsc from src/cli/index.ts
  const entry = jsonArray(inRuntime.find((i) => i.op === 'ENTRYPOINT')!.args);
  assert.equal(entry[0], 'node');
  const bin = pkg.bin['pprof-scraper'];
  assert.equal(bin, 'dist/cli/index.js');
  assert.ok(existsSync(join(ROOT, tsconfig.compilerOptions.rootDir, 'cli/index.ts')), 'src/cli/index.ts compiles to dist/cli/index.js');
  // node's own flags come before the script
  const entryFile = entry.slice(1).find((a) => !a.startsWith('-'))!;
  const distDir = [...runtime.copied].find((c) => entryFile.startsWith(`${c}/`) && c.endsWith('/dist'));
  assert.ok(distDir, `${entryFile} is inside the dist folder copied from the build stage`);
  assert.equal(posix.relative(posix.dirname(distDir), entryFile), bin);
  const cmd = jsonArray(inRuntime.find((i) => i.op === 'CMD')!.args);
  assert.deepEqual(cmd, ['run', '--config', '/etc/pprof-scraper/config.yaml']);
  assert.ok(runtime.copied.has('/etc/pprof-scraper/config.yaml'), 'a default config where the CMD looks');

  // non-root, state in a volume, health and stop signal
  const user = inRuntime.filter((i) => i.op === 'USER').at(-1)?.args;
  assert.ok(user && !/^(root|0)(:.*)?$/.test(user), `USER ${user ?? '(none)'} is not root`);
  assert.ok(inRuntime.some((i) => i.op === 'VOLUME' && i.args.includes('/var/lib/pprof-scraper')));
  const health = inRuntime.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(health, 'HEALTHCHECK');
  assert.match(health.args, /\bCMD\b/);
  assert.match(text, /PPROF_SCRAPER_HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:10101\/healthz/);
  assert.equal(inRuntime.find((i) => i.op === 'STOPSIGNAL')?.args, 'SIGTERM');
});

function healthcheckCommand(): string[] {
  const ins = parseDockerfile(read('Dockerfile'));
  const health = ins.find((i) => i.op === 'HEALTHCHECK')!;
  return jsonArray(health.args.slice(health.args.indexOf('CMD') + 3).trim());
}

function runHealthcheck(url: string): Promise<number> {
  const [node, ...rest] = healthcheckCommand();
  assert.equal(node, 'node');
  return new Promise((resolve) => {
    execFile(process.execPath, rest, { env: { ...process.env, PPROF_SCRAPER_HEALTHCHECK_URL: url }, timeout: 20_000 }, (err) => {
      resolve(err ? (typeof err.code === 'number' ? err.code : -1) : 0);
    });
  });
}

test('the HEALTHCHECK command passes on a 200 from /healthz and fails otherwise', async () => {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 503);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    assert.equal(await runHealthcheck(`http://127.0.0.1:${port}/healthz`), 0);
    assert.equal(await runHealthcheck(`http://127.0.0.1:${port}/other`), 1);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  assert.equal(await runHealthcheck(`http://127.0.0.1:${port}/healthz`), 1, 'nobody listening');
});

test('config.example.yaml is valid and names every option of the schema', async () => {
  const env = { ...process.env };
  delete env['PROFEFE_URL'];
  const loaded = await loadConfigFile(join(ROOT, 'config.example.yaml'), { env });
  assert.equal(loaded.config.repositories.length, 6);
  assert.deepEqual(loaded.config.discovery.map((d) => Object.keys(d).find((k) => d[k as keyof typeof d] !== undefined)), ['static', 'ec2', 'docker']);

  const text = read('config.example.yaml');
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (o['properties'] && typeof o['properties'] === 'object') {
      for (const [k, v] of Object.entries(o['properties'] as Record<string, unknown>)) {
        names.add(k);
        walk(v);
      }
    }
    for (const key of ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties', '$defs', 'definitions']) if (o[key]) walk(key === '$defs' || key === 'definitions' ? Object.values(o[key]) : o[key]);
  };
  walk(configJsonSchema());
  assert.ok(names.size > 50, `the schema walk found ${names.size} option names`);
  const missing = [...names].filter((n) => !new RegExp(`(^|[\\s{,])${n}:`, 'm').test(text));
  assert.deepEqual(missing, [], 'options config.example.yaml does not mention');
  // the example's comments line up: every line that sets a scalar says what it is
  const uncommented = text.split('\n').filter((l) => /^\s*[a-z_]+: \S/.test(l) && !l.includes('#'));
  assert.deepEqual(uncommented, []);
});
