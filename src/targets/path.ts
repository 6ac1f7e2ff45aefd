// A path prefix ends up between the address and the type's own path of a URL
// the daemon builds itself: it must stay a path there. Anything that a URL
// parser or the target's router would read as more than a path (a query, a
// fragment, a host after `//`, a step up with `..`, a backslash that some
// servers take for `/`) is refused, escaped forms included.

/** RFC 3986 path characters: unreserved, sub-delims, `:`, `@`, `/` and `%` of an escape. */
const PATH_CHARS = /[^A-Za-z0-9\-._~!$&'()*+,;=:@%/]/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;

/** Why `path` is not a plain, `/`-rooted URL path, or undefined when it is one. */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'is not a path (it must start with /)';
  if (path.startsWith('//')) return 'starts with //, which a URL reads as a host name: give one leading /';
  if (hasControl(path)) return 'has a control character in it';
  if (path.includes('?')) return 'has a ? in it: a path cannot carry a query (the daemon adds ?seconds=N itself)';
  if (path.includes('#')) return 'has a # in it: a path cannot carry a fragment';
  if (path.includes('\\')) return 'has a backslash in it: use /';
  const odd = PATH_CHARS.exec(path);
  if (odd) return `has ${JSON.stringify(odd[0])} in it: use URL path characters only (percent-encode others)`;
  for (const segment of path.split('/')) {
    if (/%(?![0-9A-Fa-f]{2})/.test(segment)) return 'has a % that does not start an escape like %20';
    const decoded = segment.replace(ESCAPE, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (decoded === '.' || decoded === '..') return `has a ${JSON.stringify(segment)} segment: a path cannot step up or sideways`;
    if (decoded !== segment && (/[/\\?#]/.test(decoded) || hasControl(decoded))) return `has an escaped /, \\, ?, # or control character in ${JSON.stringify(segment)}`;
  }
  return undefined;
}

/** C0 and C1 control characters, DEL included. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}
