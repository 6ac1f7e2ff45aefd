/**
 * The independent decoder of what the OTLP and Parca fakes received:
 * protoc compiles the vendored .proto files (proto/) to Python, and
 * Python's protobuf (otlp_decode.py) decodes the bytes. Neither shares code
 * with the daemon's encoder (protoc-gen-es, @bufbuild/protobuf).
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requirePeer } from './peers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'test', 'helpers', 'otlp_decode.py');
const PROTOS = [
  'opentelemetry/proto/collector/profiles/v1development/profiles_service.proto',
  'opentelemetry/proto/profiles/v1development/profiles.proto',
  'opentelemetry/proto/common/v1/common.proto',
  'opentelemetry/proto/resource/v1/resource.proto',
  'parca/profilestore/v1alpha1/profilestore.proto',
  'google/api/annotations.proto',
  'google/api/http.proto',
];

/** Debian's python3 (python3-protobuf lives there), else whatever python3 is on PATH. */
async function python(): Promise<string> {
  try {
    await access('/usr/bin/python3');
    return '/usr/bin/python3';
  } catch {
    return 'python3';
  }
}

let status: Promise<{ available: boolean; why: string }> | undefined;

/** Whether protoc and Python's protobuf are there; the reason when not. */
export function decoderStatus(): Promise<{ available: boolean; why: string }> {
  status ??= (async () => {
    try {
      await run('protoc', ['--version']);
    } catch (err) {
      return { available: false, why: `protoc: ${(err as Error).message}` };
    }
    try {
      await run(await python(), ['-c', 'import google.protobuf']);
    } catch (err) {
      return { available: false, why: `python3 -c "import google.protobuf": ${(err as Error).message.split('\n').slice(-2).join(' ')}` };
    }
    try {
      await access('/usr/include/google/protobuf/descriptor.proto');
    } catch {
      return { available: false, why: 'no /usr/include/google/protobuf/descriptor.proto (libprotobuf-dev)' };
    }
    return { available: true, why: '' };
  })();
  return status;
}

/** The node:test `skip` value for tests that need the independent decoder. */
export async function skipWithoutDecoder(): Promise<string | false> {
  const { available, why } = await decoderStatus();
  return requirePeer('protoc', available, why);
}

let generated: Promise<string> | undefined;

/** protoc --python_out of the vendored files, once per test process. */
function generate(): Promise<string> {
  generated ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'pprof-scraper-pyproto-'));
    await run('protoc', ['-I', join(ROOT, 'proto'), '-I', '/usr/include', `--python_out=${out}`, ...PROTOS]);
    // packages for Python 3's import of the generated modules
    for (const dir of ['opentelemetry', 'opentelemetry/proto', 'opentelemetry/proto/collector', 'opentelemetry/proto/collector/profiles', 'opentelemetry/proto/collector/profiles/v1development', 'opentelemetry/proto/profiles', 'opentelemetry/proto/profiles/v1development', 'opentelemetry/proto/common', 'opentelemetry/proto/common/v1', 'opentelemetry/proto/resource', 'opentelemetry/proto/resource/v1', 'parca', 'parca/profilestore', 'parca/profilestore/v1alpha1']) {
      await mkdir(join(out, dir), { recursive: true });
      await writeFile(join(out, dir, '__init__.py'), '');
    }
    process.once('exit', () => void rm(out, { recursive: true, force: true }));
    return out;
  })();
  return generated;
}

export interface DecodedOtlpProfile {
  readonly sample_type: string;
  readonly unit: string;
  readonly period_type: string;
  readonly period: number;
  readonly time_unix_nano: string;
  readonly duration_nano: string;
  readonly profile_id: string;
  readonly attributes: string[];
  readonly stacks: Record<string, number>;
}

export interface DecodedOtlp {
  readonly zero: Record<string, boolean>;
  readonly resources: { attributes: Record<string, unknown>; scopes: { name: string; version: string; profiles: DecodedOtlpProfile[] }[] }[];
}

export interface DecodedParca {
  readonly series: { labels: [string, string][]; samples: string[] }[];
}

async function decode(mode: 'otlp' | 'parca', requests: readonly Uint8Array[]): Promise<unknown[]> {
  const dir = await generate();
  const work = await mkdtemp(join(tmpdir(), 'pprof-scraper-decode-'));
  try {
    const files = await Promise.all(
      requests.map(async (bytes, i) => {
        const file = join(work, `${i}.bin`);
        await writeFile(file, bytes);
        return file;
      }),
    );
    // google.protobuf's C++ or Python backend, whichever the package has; the upb one needs nothing more
    const { stdout } = await run(await python(), [SCRIPT, dir, mode, ...files], { maxBuffer: 256 * 1024 ** 2 });
    return JSON.parse(stdout) as unknown[];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export const decodeOtlpRequests = (requests: readonly Uint8Array[]): Promise<DecodedOtlp[]> => decode('otlp', requests) as Promise<DecodedOtlp[]>;
export const decodeParcaRequests = (requests: readonly Uint8Array[]): Promise<DecodedParca[]> => decode('parca', requests) as Promise<DecodedParca[]>;
