// Credentials written into a URL (`http://user:pass@host`) must not reach a
// log line, an error or a page. URLs come back inside other text (an HTTP
// client's error, a config error quoting the value, a reason), often not
// parseable, so this works on any text rather than on URL objects.

const MASK = '***';

/** A run of text that can hold one URL: quotes, brackets of markup and whitespace end it. */
const TOKEN_RE = /[^\s"'<>`]+/g;
const SCHEME_RE = /[a-zA-Z][a-zA-Z0-9+.-]*:\/\//g;
/** `user:pass@host[:port][/path]` with no scheme, as a static target may be written. */
const BARE_RE = /^([^:]*):(.*)@((?:\[[0-9a-fA-F:.]*\]|[a-zA-Z0-9.-]+)(?::\d*)?(?:\/.*)?[),;.]*)$/;

/**
 * Replaces the userinfo of every URL in `text`: `http://user:pass@h` becomes
 * `http://user:***@h`; a user name alone (often a token) becomes `***`. It
 * needs no parseable URL, so `http://u:p@[bad` keeps no secret either.
 */
export function redactUrl(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(TOKEN_RE, (token) => (token.includes('@') ? redactToken(token) : token));
}

function redactToken(token: string): string {
  // one URL may sit inside another (`?next=http://u:p@h`): each is masked on its own
  const starts = [...token.matchAll(SCHEME_RE)].map((m) => m.index);
  if (starts.length === 0) return redactBare(token);
  let out = redactBare(token.slice(0, starts[0]));
  starts.forEach((start, i) => {
    out += redactSchemeUrl(token.slice(start, starts[i + 1] ?? token.length));
  });
  return out;
}

function redactSchemeUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  const rest = url.slice(start);
  // Up to the last `@` before a query, not before the first `/`: a password
  // may hold an unescaped `/` (`http://u:pa/ss@h`), and a path with an `@`
  // in it, masked too, costs less than a password shown. A URL that does not
  // parse has no query to trust: up to its last `@`.
  const end = parses(url) ? firstIndex(rest, /[?#]/) : rest.length;
  const at = rest.lastIndexOf('@', end - 1);
  if (at < 0 || at >= end) return url;
  return url.slice(0, start) + maskUserinfo(rest.slice(0, at)) + rest.slice(at);
}

/** Without a scheme only `user:pass@host` counts: `name@host` is an email address, `image:tag@sha256:…` an image. */
function redactBare(text: string): string {
  const bare = text.includes('@') ? BARE_RE.exec(text) : null;
  if (!bare) return text;
  return `${bare[1] ?? ''}:${MASK}@${bare[3] ?? ''}`;
}

function maskUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(':');
  return colon < 0 ? MASK : `${userinfo.slice(0, colon)}:${MASK}`;
}

function parses(url: string): boolean {
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

function firstIndex(text: string, re: RegExp): number {
  const m = re.exec(text);
  return m ? m.index : text.length;
}
