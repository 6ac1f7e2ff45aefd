import type { IncomingHttpHeaders } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

// A web page in the operator's browser can send requests to the listener: by
// DNS rebinding (its own name made to point at 127.0.0.1, so it can read the
// answers), or blind, cross-site (a form post, an image). The checks here
// refuse both; what they cannot tell apart from a tool (curl, a scraper,
// `go tool pprof` send no Origin and no Sec-Fetch-Site) they let through.

/** An answer that refuses a request, and why. */
export interface Refusal {
  readonly status: number;
  readonly text: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The host of a Host header, lower case, without its port or brackets and
 * without a trailing dot; undefined when the header is not host[:port].
 */
export function hostOfHeader(header: string): string | undefined {
  const v6 = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(header);
  if (v6) return isIPv6(v6[1] ?? '') ? (v6[1] ?? '').toLowerCase() : undefined;
  const named = /^([^:[\]\s/@]+)(?::\d{1,5})?$/.exec(header);
  return named ? (named[1] ?? '').toLowerCase().replace(/\.$/, '') : undefined;
}

/**
 * DNS rebinding: a page that rebinds its own name to the listener sends
 * that name as Host. IP literals cannot be rebound, and `localhost` and
 * `*.localhost` never reach public DNS (an `ssh -L` tunnel sends
 * `localhost:port`). A request without Host (HTTP/1.0) is not from a browser.
 */
export function checkHost(header: string | undefined, listenHost: string, allowedHosts: readonly string[]): Refusal | undefined {
  if (header === undefined) return undefined;
  const host = hostOfHeader(header);
  if (host !== undefined) {
    if (isIPv4(host) || isIPv6(host)) return undefined;
    if (host === 'localhost' || host.endsWith('.localhost')) return undefined;
    if (host === listenHost.toLowerCase() || allowedHosts.includes(host)) return undefined;
  }
  const shown = JSON.stringify(header.slice(0, 100));
  return {
    status: 421,
    text:
      host === undefined
        ? `Host header ${shown} is not host[:port]: this listener answers only to its own names\n`
        : `this listener does not answer to the host name ${JSON.stringify(host)} (Host: ${shown}), so that a web page cannot reach it by DNS rebinding. ` +
          `If this is a name you use for it, add ${JSON.stringify(host)} to server.allowed_hosts; IP addresses and localhost are always answered\n`,
  };
}

const FORM_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/**
 * For requests that change state or cost (a POST, a CPU profile): refuses
 * what a page of another site can send. `what` names the request in the
 * answer (`POST /-/reload`).
 */
export function checkCrossSite(headers: IncomingHttpHeaders, method: string, ownOrigin: string, what: string): Refusal | undefined {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, text: `${what} refused: the browser says it comes from another site (Sec-Fetch-Site: ${site.slice(0, 40)}). Open the listener's own page, or use a tool such as curl\n` };
  }
  const origin = headers.origin;
  if (origin !== undefined && !sameOrigin(origin, ownOrigin)) {
    return { status: 403, text: `${what} refused: it comes from the web page ${JSON.stringify(origin.slice(0, 200))}, not from this listener (${ownOrigin}). Send it from the listener's own page, or with a tool such as curl, which sends no Origin\n` };
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const type = (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (FORM_TYPES.has(type)) {
      return { status: 403, text: `${what} refused: Content-Type ${type} is what a form on any web site can send. Send no body (curl -X POST URL), or Content-Type: application/json\n` };
    }
  }
  return undefined;
}

function sameOrigin(origin: string, own: string): boolean {
  try {
    return new URL(origin).origin === new URL(own).origin;
  } catch {
    // `null` (a sandboxed frame, a file: page) or garbage
    return false;
  }
}
