import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { BCRYPT_RE } from '../config/schema.js';
import type { ServerConfig } from '../config/schema.js';
import { Secret } from '../config/secret.js';

/** How the status listener guards itself: server: of the config, with the files it names read. */
export interface ListenerOptions {
  /** Host names answered besides IP literals, localhost and the listen host; lower case. */
  readonly allowedHosts?: readonly string[];
  /** POST /-/reload is taken (server.enable_reload). */
  readonly enableReload?: boolean;
  readonly basicAuth?: { readonly username: string; readonly passwordHash: Secret };
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly clientCa?: Buffer | undefined };
}

/**
 * Reads the files server: names (the password hash, the certificates) and
 * checks they can be used, so a bad file fails the start or the reload with
 * its path, before the listener changes.
 */
export async function listenerOptionsOf(server: ServerConfig): Promise<ListenerOptions> {
  const options: { -readonly [K in keyof ListenerOptions]: ListenerOptions[K] } = {
    allowedHosts: server.allowed_hosts,
    enableReload: server.enable_reload,
  };
  const auth = server.basic_auth;
  if (auth) {
    let passwordHash = auth.password_hash;
    if (auth.password_hash_file !== undefined) {
      const text = (await read(auth.password_hash_file, 'server.basic_auth.password_hash_file')).toString('utf8').trim();
      if (!BCRYPT_RE.test(text)) {
        throw new Error(`server.basic_auth.password_hash_file ${auth.password_hash_file} does not hold a bcrypt hash ($2y$10$ and 53 more characters): write one there with htpasswd -nBC 10 "" | tr -d ':\\n'`);
      }
      passwordHash = new Secret(text);
    }
    if (passwordHash === undefined) throw new Error('server.basic_auth needs password_hash or password_hash_file');
    options.basicAuth = { username: auth.username, passwordHash };
  }
  const tls = server.tls;
  if (tls) {
    const cert = await read(tls.cert_file, 'server.tls.cert_file');
    const key = await read(tls.key_file, 'server.tls.key_file');
    const clientCa = tls.client_ca_file === undefined ? undefined : await read(tls.client_ca_file, 'server.tls.client_ca_file');
    try {
      createSecureContext({ cert, key, ...(clientCa ? { ca: clientCa } : {}) });
    } catch (err) {
      throw new Error(`server.tls: cannot serve with cert_file ${tls.cert_file} and key_file ${tls.key_file}${clientCa ? ` and client_ca_file ${tls.client_ca_file ?? ''}` : ''}: ${(err as Error).message}; check that they are PEM files and that the key belongs to the certificate`, { cause: err });
    }
    options.tls = { cert, key, clientCa };
  }
  return options;
}

async function read(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`${key} ${path}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
