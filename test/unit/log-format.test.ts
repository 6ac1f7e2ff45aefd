import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { logfmtStream } from '../../src/log.js';
import { logfmtLine, logfmtValue } from '../../src/logfmt.js';

// logfmt as go-logfmt writes it (encode.go, jsonstring.go), which is what
// Prometheus's and Alloy's logs are: each case is what that encoder makes of
// the value.

const VALUES: [string, unknown, string][] = [
  ['a plain word', 'ready', 'ready'],
  ['an empty string: nothing after =', '', ''],
  ['a space', 'scrape failed', '"scrape failed"'],
  ['an equals sign', 'a=b', '"a=b"'],
  ['a double quote', 'say "hi"', '"say \\"hi\\""'],
  ['a backslash alone needs no quotes', 'C:\\dir', 'C:\\dir'],
  ['a backslash in a quoted value is escaped', 'C:\\my dir', '"C:\\\\my dir"'],
  ['a newline, a tab, a carriage return', 'a\nb\tc\rd', '"a\\nb\\tc\\rd"'],
  ['other control characters as \\u00XX', 'bell\u0007', '"bell\\u0007"'],
  ['DEL is quoted, not escaped', 'del\u007f', '"del\u007f"'],
  ['non-ASCII as it is', 'Zürich→東京', 'Zürich→東京'],
  ['a lone surrogate is replaced', 'x\ud800y', '"x\\ufffdy"'],
  ['the word null, quoted so it is not read as a null', 'null', '"null"'],
  ['a null', null, 'null'],
  ['a number', 42.5, '42.5'],
  ['a boolean', true, 'true'],
  ['an object, as JSON', { added: 1, removed: 0 }, '"{\\"added\\":1,\\"removed\\":0}"'],
  ['an array, as JSON', ['cpu', 'heap'], '"[\\"cpu\\",\\"heap\\"]"'],
];

for (const [name, value, expected] of VALUES) {
  test(`logfmt value: ${name}`, () => {
    assert.equal(logfmtValue(value), expected);
  });
}

test('a logfmt line: ts, level and msg first, then the fields in order; bad key characters dropped', () => {
  const json = JSON.stringify({ level: 'warn', time: '2026-12-02T12:00:00.000Z', target: '10.0.0.5:6060', reason: 'answered text/html, not "pprof"', msg: 'scrape failed', 'bad key=': 1 });
  assert.equal(
    logfmtLine(json),
    'ts=2026-12-02T12:00:00.000Z level=warn msg="scrape failed" target=10.0.0.5:6060 reason="answered text/html, not \\"pprof\\"" badkey=1\n',
  );
  assert.equal(logfmtLine('not json at all\n'), 'msg="not json at all"\n', 'a line that is not JSON is kept, as the message');
});

test('a pino logger through logfmtStream writes one logfmt line per record, levels by name', () => {
  const lines: string[] = [];
  const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label: string) => ({ level: label }) } }, logfmtStream({ write: (l: string) => lines.push(l) }));
  logger.info({ listen: '127.0.0.1:10101' }, 'status listener up');
  logger.error({ error: 'EACCES: permission denied, open "/var/lib/x"' }, 'cannot write');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info msg="status listener up" listen=127\.0\.0\.1:10101\n$/);
  assert.match(lines[1] ?? '', /^ts=\S+ level=error msg="cannot write" error="EACCES: permission denied, open \\"\/var\/lib\/x\\""\n$/);
});
