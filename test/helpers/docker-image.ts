/**
 * The Go pprof target as a container image, built without a registry:
 * `docker import` of a tarball holding only the static binary.
 */
import {readFile} from 'node:fs/promises';
import {Readable} from 'node:stream';
import type Docker from 'dockerode';
import {buildGoTarget} from './go-target.js';

export const TARGET_IMAGE = 'pprof-target:test';

/** A one-file ustar archive: enough for `docker import`, no tar binary needed. */
export function tarOf(name: string, body: Buffer, mode = 0o755): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number): void => {
    header.write(text.slice(0, length), offset, length, 'ascii');
  };
  const octal = (n: number, length: number): string => n.toString(8).padStart(length - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(body.length, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024)]);
}

/** Imports the Go target as TARGET_IMAGE (entrypoint /target) into the engine. */
export async function importTargetImage(docker: Docker): Promise<string> {
  const binary = await readFile(await buildGoTarget());
  const stream = await docker.importImage(Readable.from([tarOf('target', binary)]), {
    repo: 'pprof-target',
    tag: 'test',
    changes: ['ENTRYPOINT ["/target"]'],
  } as object);
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: {error?: string}[]) => {
      const failed = output?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(`docker import failed: ${failed?.error}`));
      else resolve();
    });
  });
  return TARGET_IMAGE;
}

export interface TargetContainerOptions {
  readonly name: string;
  readonly labels?: Record<string, string>;
  /** host, bridge (the default) or none. */
  readonly network?: string;
  /** The Go target's -listen; inside the container for bridge, on the host's loopback for host mode. */
  readonly listen?: string;
  readonly restart?: 'no' | 'always' | 'unless-stopped';
}

/** Creates and starts a container running the Go target. */
export async function runTargetContainer(docker: Docker, options: TargetContainerOptions): Promise<Docker.Container> {
  const container = await docker.createContainer({
    name: options.name,
    Image: TARGET_IMAGE,
    Cmd: ['-listen', options.listen ?? '0.0.0.0:6060'],
    Labels: options.labels ?? {},
    StopTimeout: 2,
    HostConfig: {
      NetworkMode: options.network ?? 'bridge',
      RestartPolicy: {Name: options.restart ?? 'no'},
    },
  });
  await container.start();
  return container;
}
