// logfmt, as Prometheus and Grafana Alloy log (go-kit/log over
// github.com/go-logfmt/logfmt): `ts=… level=info msg="…" key=value`. The
// quoting follows go-logfmt's encode.go and jsonstring.go: a value is quoted
// when it holds a space or a control character, `=`, `"`, DEL or invalid
// UTF-16; inside quotes `\` and `"` are escaped, \n \r \t are written so,
// other control characters as \u00XX. The string "null" is quoted, so it is
// not read back as a null. Keys lose the characters a key cannot hold.

const FIRST = ['ts', 'level', 'msg'] as const;

/** One log record, as pino writes it in JSON (`time`, `level`, `msg`, fields), as one logfmt line with its newline. */
export function logfmtLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    // never lose a line: one that is not JSON goes out as the message
    return `msg=${logfmtValue(json.trimEnd())}\n`;
  }
  const fields: [string, unknown][] = [];
  const first: Record<(typeof FIRST)[number], unknown> = { ts: record['time'], level: record['level'], msg: record['msg'] };
  for (const key of FIRST) if (first[key] !== undefined) fields.push([key, first[key]]);
  for (const [key, value] of Object.entries(record)) {
    if (key === 'time' || key === 'level' || key === 'msg') continue;
    fields.push([key, value]);
  }
  return fields.map(([k, v]) => `${logfmtKey(k)}=${logfmtValue(v)}`).join(' ') + '\n';
}

function logfmtKey(key: string): string {
  // go-logfmt's keyRuneFilter: nothing up to space, no `=`, no `"`
  // eslint-disable-next-line no-control-regex -- control characters are what it takes out
  const clean = key.replace(/[\u0000-\u0020="\uFFFD]/g, '');
  return clean === '' ? '_' : clean;
}

/** A value: strings as they are or quoted, numbers and booleans as text, objects and arrays as JSON (quoted). */
export function logfmtValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return logfmtString(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return logfmtString(JSON.stringify(value));
}

// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NEEDS_QUOTES = /[\u0000-\u0020="\u007f\uFFFD]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function logfmtString(s: string): string {
  if (s === 'null') return '"null"';
  if (!NEEDS_QUOTES.test(s)) return s;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c || c === 0x22) out += `\\${s[i] ?? ''}`;
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20) out += `\\u00${c.toString(16).padStart(2, '0')}`;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) out += s.slice(i, ++i + 1);
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += s[i] ?? '';
  }
  return out + '"';
}
