import { readFile } from 'node:fs/promises';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { ClientSettings, Config } from '../config/index.js';

/** How to reach the targets of one discovery entry. */
export interface TargetClient {
  readonly dispatcher: Dispatcher;
  /** Authorization and the like; values hold secrets, so never log them. */
  readonly headers: Readonly<Record<string, string>>;
}

/** TLS and credentials for a discovery entry: its own settings over scrape:'s, field by field for tls. */
export function clientSettingsFor(config: Config, source: number): ClientSettings {
  const entry = config.discovery[source];
  const block = (entry?.static ?? entry?.ec2 ?? entry?.docker ?? {}) as ClientSettings;
  const scrape = config.scrape as ClientSettings;
  const blockAuth = block.bearer_token !== undefined || block.bearer_token_file !== undefined || block.basic_auth !== undefined;
  const auth = blockAuth ? block : scrape;
  const tls = { ...scrape.tls, ...pickTls(block.tls) };
  return {
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    bearer_token: auth.bearer_token,
    bearer_token_file: auth.bearer_token_file,
    basic_auth: auth.basic_auth,
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

/** Reads credential and CA files now (at start and at each reload) and builds one HTTP agent per distinct setting. */
export async function createTargetClient(settings: ClientSettings): Promise<TargetClient & { close(): Promise<void> }> {
  const headers: Record<string, string> = {};
  if (settings.bearer_token !== undefined) headers['authorization'] = `Bearer ${settings.bearer_token.reveal()}`;
  if (settings.bearer_token_file !== undefined) headers['authorization'] = `Bearer ${(await readFile(settings.bearer_token_file, 'utf8')).trim()}`;
  if (settings.basic_auth !== undefined) {
    const { username, password, password_file } = settings.basic_auth;
    const pw = password !== undefined ? password.reveal() : password_file !== undefined ? (await readFile(password_file, 'utf8')).replace(/\r?\n$/, '') : '';
    headers['authorization'] = `Basic ${Buffer.from(`${username}:${pw}`).toString('base64')}`;
  }
  const tls = settings.tls;
  const connect: Record<string, unknown> = { timeout: 10_000 };
  if (tls?.ca_file !== undefined) connect['ca'] = await readFile(tls.ca_file);
  if (tls?.cert_file !== undefined) connect['cert'] = await readFile(tls.cert_file);
  if (tls?.key_file !== undefined) connect['key'] = await readFile(tls.key_file);
  if (tls?.server_name !== undefined) connect['servername'] = tls.server_name;
  if (tls?.insecure_skip_verify === true) connect['rejectUnauthorized'] = false;
  // Targets are scraped every few seconds to minutes: keep a socket only
  // briefly, so ten thousand targets do not mean ten thousand idle sockets.
  const agent = new Agent({ connect, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 15_000, headersTimeout: 0, bodyTimeout: 0 });
  return {
    dispatcher: agent,
    headers,
    close: () => agent.close(),
  };
}
