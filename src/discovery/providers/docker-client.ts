import { createRequire, Module } from 'node:module';
import { dirname, join } from 'node:path';
import type Dockerode from 'dockerode';

type DockerodeClass = typeof Dockerode;

let loaded: DockerodeClass | undefined;

/**
 * dockerode, without loading at start what discovery never calls. Its main
 * module requires, before anything runs, the SSH transport (ssh2 and its
 * crypto), the BuildKit session (gRPC, protobufjs) and the build-context
 * packing (tar-fs, .dockerignore): about 170 files and 11 MiB of a unix
 * socket JSON client's footprint. Each of those modules is put in the
 * require cache (Node's documented way to provide a module) as a stand-in
 * that loads the real one on its first call, so dockerode's API stays whole.
 */
export function loadDockerode(): DockerodeClass {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const main = require.resolve('dockerode');
  const fromDockerode = createRequire(main);
  const fromModem = createRequire(fromDockerode.resolve('docker-modem'));
  const callable = (file: string): void => deferred(require, file, (real) => (...args: unknown[]) => (real() as (...a: unknown[]) => unknown)(...args));
  callable(fromModem.resolve('./ssh.js'));
  callable(join(dirname(main), 'session.js'));
  callable(fromDockerode.resolve('@balena/dockerignore'));
  deferred(require, fromDockerode.resolve('tar-fs'), (real) => ({
    pack: (...args: unknown[]) => (real() as { pack: (...a: unknown[]) => unknown }).pack(...args),
    extract: (...args: unknown[]) => (real() as { extract: (...a: unknown[]) => unknown }).extract(...args),
  }));
  loaded = require('dockerode') as DockerodeClass;
  return loaded;
}

/** Caches `file` as a module whose exports load the real one when first used; a module already loaded stays as it is. */
function deferred(require: NodeJS.Require, file: string, exportsOf: (real: () => unknown) => unknown): void {
  if (require.cache[file]) return;
  let real: unknown;
  const load = (): unknown => {
    if (real === undefined) {
      delete require.cache[file];
      real = require(file);
    }
    return real;
  };
  const stub = new Module(file);
  stub.filename = file;
  stub.loaded = true;
  stub.exports = exportsOf(load);
  require.cache[file] = stub;
}
