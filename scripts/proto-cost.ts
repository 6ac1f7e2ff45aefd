/**
 * What the protobuf and gRPC stack costs when an otlp, parca or pyroscope
 * repository is configured: in fresh Node processes, the time to load each adapter
 * (its descriptor's create(): @bufbuild/protobuf, the generated code,
 * connect-node) and build it, and the RSS and heap it adds. Not a test:
 * numbers for docs/repositories/otlp.md, from the built JavaScript.
 *
 *   npm run build && node --import tsx scripts/proto-cost.ts [runs]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.argv[2] ?? 5);

const CASES: Record<string, string> = {
  baseline: '',
  'otlp http/protobuf': 'otlp: {endpoint: "http://127.0.0.1:9", protocol: http/protobuf}',
  'otlp grpc': 'otlp: {endpoint: "http://127.0.0.1:9", protocol: grpc}',
  parca: 'parca: {url: "127.0.0.1:9", insecure: true}',
  pyroscope: 'pyroscope: {url: "http://127.0.0.1:9"}',
};

function measure(block: string): { ms: number; rssMiB: number; heapMiB: number } {
  const script = `
    const { parseConfig } = await import('./dist/config/index.js');
    const { createRepository } = await import('./dist/repositories/factory.js');
    globalThis.gc?.(); const before = process.memoryUsage();
    const t0 = performance.now();
    const block = ${JSON.stringify(block)};
    if (block) {
      const { config } = parseConfig('repositories:\\n  - ' + block + '\\n', 'c.yaml', { baseDir: '.', env: {} });
      const r = await createRepository(config.repositories[0]);
      await r.close();
    }
    const ms = performance.now() - t0;
    globalThis.gc?.(); const after = process.memoryUsage();
    console.log(JSON.stringify({ ms, rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  const { ms, rss, heap } = JSON.parse(out) as { ms: number; rss: number; heap: number };
  return { ms, rssMiB: rss / 1024 ** 2, heapMiB: heap / 1024 ** 2 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

console.log(`| configured | load + build (median of ${runs}) | RSS added | heap added |`);
console.log('|---|---|---|---|');
for (const [name, block] of Object.entries(CASES)) {
  const m = Array.from({ length: runs }, () => measure(block));
  console.log(`| ${name} | ${median(m.map((x) => x.ms)).toFixed(0)} ms | ${median(m.map((x) => x.rssMiB)).toFixed(1)} MiB | ${median(m.map((x) => x.heapMiB)).toFixed(1)} MiB |`);
}
