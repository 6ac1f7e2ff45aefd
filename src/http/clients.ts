import { readFile } from 'node:fs/promises';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { providerOf } from '../config/index.js';
import type { ClientSettings, Config } from '../config/index.js';
import { addressPolicyOf } from '../targets/index.js';
import type { AddressPolicy } from '../targets/index.js';
import { guardedConnector } from './address-guard.js';

/** An outbound HTTP client: to one discovery entry's targets, or to a repository. */
export interface TargetClient {
  /** A pool of connections per origin. */
  readonly dispatcher: Dispatcher;
  /**
   * One connection per origin, for answers that come at once (not a CPU
   * profile's window, which would hold it): a target scraped every few
   * seconds to minutes needs no pool, and a pool costs ~20 KiB per origin.
   * Two requests to one origin at once take turns. `dispatcher` when absent.
   */
  readonly single?: Dispatcher;
  /** Authorization and the like; values hold secrets, so never log them. */
  readonly headers: Readonly<Record<string, string>>;
}

/** TLS, credentials and, for targets, the addresses it may connect to (a repository's block has no `addresses`). */
export interface TargetClientSettings extends ClientSettings {
  /** `scrape.deny_cidrs` and `allow_cidrs`, checked again on the address each connection actually goes to. */
  readonly addresses?: AddressPolicy | undefined;
}

/**
 * TLS and credentials for a discovery entry: its own settings over scrape:'s,
 * field by field for tls. A target uses the client of the entry that found
 * it, so a block's credentials reach only that block's targets; scrape:'s
 * reach every target whose block sets none.
 */
export function clientSettingsFor(config: Config, source: number): TargetClientSettings {
  const entry = config.discovery[source];
  const block: ClientSettings = (entry ? providerOf(entry)?.block : undefined) ?? {};
  const scrape = config.scrape as ClientSettings;
  const blockAuth = block.bearer_token !== undefined || block.bearer_token_file !== undefined || block.basic_auth !== undefined;
  const auth = blockAuth ? block : scrape;
  const tls = { ...scrape.tls, ...pickTls(block.tls) };
  return {
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    bearer_token: auth.bearer_token,
    bearer_token_file: auth.bearer_token_file,
    basic_auth: auth.basic_auth,
    addresses: addressPolicyOf(config),
  };
}

function pickTls(tls: ClientSettings['tls']): NonNullable<ClientSettings['tls']> {
  if (!tls) return {};
  const out: NonNullable<ClientSettings['tls']> = {};
  if (tls.ca_file !== undefined) out.ca_file = tls.ca_file;
  if (tls.cert_file !== undefined) out.cert_file = tls.cert_file;
  if (tls.key_file !== undefined) out.key_file = tls.key_file;
  if (tls.server_name !== undefined) out.server_name = tls.server_name;
  if (tls.insecure_skip_verify !== undefined) out.insecure_skip_verify = tls.insecure_skip_verify;
  return out;
}

/** The Authorization header of a block's bearer_token(_file) or basic_auth, reading its files now; none without them. */
export async function authHeaders(settings: ClientSettings): Promise<Record<string, string>> {
  if (settings.bearer_token !== undefined) return { authorization: `Bearer ${settings.bearer_token.reveal()}` };
  if (settings.bearer_token_file !== undefined) return { authorization: `Bearer ${(await readFile(settings.bearer_token_file, 'utf8')).trim()}` };
  if (settings.basic_auth !== undefined) {
    const { username, password, password_file } = settings.basic_auth;
    const pw = password !== undefined ? password.reveal() : password_file !== undefined ? (await readFile(password_file, 'utf8')).replace(/\r?\n$/, '') : '';
    return { authorization: `Basic ${Buffer.from(`${username}:${pw}`).toString('base64')}` };
  }
  return {};
}

/** A block's `tls:` as Node's TLS connect options, reading its files now. */
export async function tlsOptions(tls: ClientSettings['tls']): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string; rejectUnauthorized?: boolean }> {
  return {
    ...(tls?.ca_file !== undefined ? { ca: await readFile(tls.ca_file) } : {}),
    ...(tls?.cert_file !== undefined ? { cert: await readFile(tls.cert_file) } : {}),
    ...(tls?.key_file !== undefined ? { key: await readFile(tls.key_file) } : {}),
    ...(tls?.server_name !== undefined ? { servername: tls.server_name } : {}),
    ...(tls?.insecure_skip_verify === true ? { rejectUnauthorized: false } : {}),
  };
}

/** Reads credential and CA files now (at start and at each reload) and builds one HTTP agent per distinct setting. */
export async function createTargetClient(settings: TargetClientSettings): Promise<TargetClient & { close(): Promise<void> }> {
  const headers = await authHeaders(settings);
  const connect: Record<string, unknown> = { timeout: 10_000, ...(await tlsOptions(settings.tls)) };
  const policy = settings.addresses;
  const options: Agent.Options = {
    connect: policy ? guardedConnector(connect, policy) : connect,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: 15_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  // undici's Agent drops an origin's pool or client once its last connection closes
  const agent = new Agent(options);
  const single = new Agent({ ...options, connections: 1 });
  // a closed undici Agent rejects a second close(): the Repository contract has close idempotent
  let closing: Promise<void> | undefined;
  return {
    dispatcher: agent,
    single,
    headers,
    close: () => (closing ??= Promise.all([agent.close(), single.close()]).then(() => undefined)),
  };
}

/**
 * How long an idle connection is kept. Targets are scraped every few seconds
 * to minutes: a socket is kept only briefly, so ten thousand targets do not
 * mean ten thousand idle sockets, and a scrape whose target has nothing else
 * due within this time asks for its connection to be closed after the answer.
 */
export const KEEP_ALIVE_MS = 4_000;
