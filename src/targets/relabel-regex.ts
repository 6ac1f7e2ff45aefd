import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';

// Relabeling regexes are RE2, as in Prometheus (which compiles them with Go's
// regexp, an RE2 engine): the same syntax, so a rule pasted from
// prometheus.yml means the same here ((?i), (?P<name>), \pL work; lookaround
// and backreferences are refused, as Prometheus refuses them), and matching
// in time linear in the value, so a value from a tag or a discovery file
// cannot make a rule backtrack for minutes. re2js is that engine in plain
// JavaScript; it is loaded the first time a rule is compiled, so a config
// without relabel_configs does not load it.
const require = createRequire(import.meta.url);
let engine: typeof RE2JS | undefined;

function re2(): typeof RE2JS {
  engine ??= (require('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return engine;
}

/**
 * A rule's regex, anchored at both ends as Prometheus anchors it
 * (`^(?s:` + regex + `)$`, model/relabel/relabel.go NewRegexp): `.` matches
 * a newline too, and `foo` matches the value `foo` only, never `xfooy`.
 */
export class RelabelRegex {
  readonly source: string;
  readonly #re: RE2JS;
  readonly #names: Readonly<Record<string, number>>;

  /** Throws an Error saying what RE2 refuses in `source`. */
  constructor(source: string) {
    this.source = source;
    try {
      this.#re = re2().compile(`^(?s:${source})$`);
    } catch (err) {
      throw new Error(`regex ${JSON.stringify(source)} is not valid RE2 syntax (the syntax Prometheus uses): ${(err as Error).message}`, { cause: err });
    }
    this.#names = this.#re.namedGroups();
  }

  test(value: string): boolean {
    return this.#re.matches(value);
  }

  /** The groups of a match of the whole value ([0] the value itself, a group that took no part ''), or undefined. */
  groups(value: string): RegexMatch | undefined {
    const m = this.#re.matcher(value);
    if (!m.matches()) return undefined;
    const groups: string[] = [];
    for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i) ?? '');
    return { groups, names: this.#names };
  }
}

export interface RegexMatch {
  readonly groups: readonly string[];
  readonly names: Readonly<Record<string, number>>;
}

/**
 * Go's regexp.Expand, which Prometheus uses for `replacement` and
 * `target_label`: `$1`, `${1}`, `$name`, `${name}`; `$$` is a `$`. In the
 * `$name` form the name is as long as it can be (`$1x` is `${1x}`, which
 * names no group); a name that is no group gives the empty string; a `$`
 * followed by anything else is copied as it is.
 */
export function expand(template: string, match: RegexMatch): string {
  let out = '';
  let rest = template;
  for (;;) {
    const i = rest.indexOf('$');
    if (i < 0) break;
    out += rest.slice(0, i);
    rest = rest.slice(i);
    if (rest.length > 1 && rest[1] === '$') {
      out += '$';
      rest = rest.slice(2);
      continue;
    }
    const ref = extractName(rest);
    if (ref === undefined) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    rest = rest.slice(ref.length);
    out += groupValue(ref.name, match);
  }
  return out + rest;
}

// Go's test: unicode.IsLetter, unicode.IsDigit or '_'
const NAME_CHAR = /[\p{L}\p{Nd}_]/u;

/** Go's extract: the name after a `$` and how much of the template it takes, or undefined when none. */
function extractName(s: string): { name: string; length: number } | undefined {
  if (s.length < 2 || s[0] !== '$') return undefined;
  const brace = s[1] === '{';
  const start = brace ? 2 : 1;
  let i = start;
  while (i < s.length) {
    const ch = String.fromCodePoint(s.codePointAt(i) ?? 0);
    if (!NAME_CHAR.test(ch)) break;
    i += ch.length;
  }
  if (i === start) return undefined;
  const name = s.slice(start, i);
  if (brace) {
    if (s[i] !== '}') return undefined;
    i++;
  }
  return { name, length: i };
}

function groupValue(name: string, match: RegexMatch): string {
  // a number without a leading zero (and below 1e8, as Go counts) is a group's index; anything else is a name
  if (/^(0|[1-9][0-9]{0,7})$/.test(name)) return match.groups[Number(name)] ?? '';
  const index = match.names[name];
  return index === undefined ? '' : (match.groups[index] ?? '');
}
