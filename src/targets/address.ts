import { isIPv6 } from 'node:net';
import { pathProblem } from './path.js';
import { redactUrl } from '../redact.js';

/** An address as written in a static target or found by discovery. */
export interface ParsedAddress {
  readonly host: string;
  readonly port?: number;
  readonly scheme?: 'http' | 'https';
  /** Path prefix from the URL form (`http://h:8080/internal/pprof`), without a trailing slash. */
  readonly pathPrefix?: string;
}

export type AddressResult = { ok: true; value: ParsedAddress } | { ok: false; error: string };

/**
 * Parses `host`, `host:port`, `[v6]:port`, a bare IPv6 address, or an
 * http(s) URL whose path is the pprof prefix.
 */
export function parseAddress(text: string): AddressResult {
  const input = text.trim();
  if (input === '') return { ok: false, error: 'address is empty' };
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(input)) return parseUrlForm(input);
  if (isIPv6(input)) return { ok: true, value: { host: input } };
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(input);
  if (bracketed) {
    const host = bracketed[1] ?? '';
    if (!isIPv6(host)) return { ok: false, error: `${JSON.stringify(host)} in brackets is not an IPv6 address` };
    return withPort(host, bracketed[2], input);
  }
  const colon = input.lastIndexOf(':');
  if (colon === -1) return checkHost(input) ?? { ok: true, value: { host: input } };
  const host = input.slice(0, colon);
  return checkHost(host) ?? withPort(host, input.slice(colon + 1), input);
}

function checkHost(host: string): AddressResult | undefined {
  if (host === '') return { ok: false, error: 'address has no host' };
  if (!/^[a-zA-Z0-9._-]+$/.test(host)) return { ok: false, error: `host ${JSON.stringify(redactUrl(host))} is not a hostname or IP address` };
  return undefined;
}

function withPort(host: string, portText: string | undefined, input: string): AddressResult {
  if (portText === undefined || portText === '') return { ok: true, value: { host } };
  const port = parsePort(portText);
  if (typeof port === 'string') return { ok: false, error: `${port} in ${JSON.stringify(input)}` };
  return { ok: true, value: { host, port } };
}

/** A port number, or the reason it is not one. */
export function parsePort(text: string): number | string {
  if (!/^\d+$/.test(text.trim())) return `${JSON.stringify(text)} is not a port`;
  const n = Number(text);
  if (n < 1 || n > 65535) return `port ${n} is out of range 1..65535`;
  return n;
}

function parseUrlForm(input: string): AddressResult {
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    return { ok: false, error: `${JSON.stringify(redactUrl(input))} is not a valid URL` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { ok: false, error: `scheme ${JSON.stringify(u.protocol.slice(0, -1))} in ${JSON.stringify(input)} is not http or https` };
  }
  if (u.username || u.password) return { ok: false, error: `${JSON.stringify(redactUrl(input))} has credentials in it: use basic_auth instead` };
  if (u.search || u.hash) return { ok: false, error: `${JSON.stringify(input)} has a query or fragment: give only scheme, address and path prefix` };
  // URL normalises default ports away; a port the user wrote stays.
  const portMatch = /^[a-z]+:\/\/(?:\[[^\]]+\]|[^/:]+):(\d+)/i.exec(input);
  let port: number | undefined;
  if (portMatch?.[1] !== undefined) {
    const p = parsePort(portMatch[1]);
    if (typeof p === 'string') return { ok: false, error: `${p} in ${JSON.stringify(input)}` };
    port = p;
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const prefix = u.pathname.replace(/\/+$/, '');
  const problem = prefix === '' ? undefined : pathProblem(prefix);
  if (problem !== undefined) return { ok: false, error: `path ${JSON.stringify(prefix)} of ${JSON.stringify(input)} ${problem}` };
  const value: ParsedAddress = {
    host,
    scheme: u.protocol === 'https:' ? 'https' : 'http',
    ...(port !== undefined ? { port } : {}),
    ...(prefix !== '' ? { pathPrefix: prefix } : {}),
  };
  return { ok: true, value };
}

/** `host:port`, with brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
