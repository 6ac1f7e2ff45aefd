import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BEGIN, CONFIG_DOC, END, optionRows, renderReference, withReference } from '../../scripts/config-docs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

void test('docs/configuration.md holds the option reference the schema gives (npm run docs:config writes it)', () => {
  const doc = readFileSync(CONFIG_DOC, 'utf8');
  assert.ok(doc.includes(BEGIN) && doc.includes(END), 'the markers of the option reference are missing');
  assert.ok(withReference(doc, renderReference()) === doc, 'docs/configuration.md is not current: run npm run docs:config and commit the result');
});

void test('the option reference has one row per option, each kind of block linked to its own page', () => {
  const rows = optionRows();
  const paths = rows.map((r) => r.path);
  assert.equal(new Set(paths).size, paths.length, 'an option path appears twice');
  for (const expected of ['scrape.interval', 'profiles.<name>.seconds', 'discovery[].ec2.regions', 'discovery[].docker.tls.ca', 'repositories[].s3.bucket', 'repositories[].pyroscope.queue.max_age', 'server.tls.cert_file', 'state_dir']) {
    assert.ok(paths.includes(expected), `no row for ${expected}`);
  }
  const row = (path: string) => rows.find((r) => r.path === path);
  // durations and sizes are given as they are written, not in ms and bytes
  assert.deepEqual([row('scrape.interval')?.type, row('scrape.interval')?.default], ['duration', '1m']);
  assert.deepEqual([row('scrape.max_profile_size')?.type, row('scrape.max_profile_size')?.default], ['size', '64MiB']);
  assert.equal(row('repositories[].s3.bucket')?.required, true);
  const table = renderReference(rows);
  for (const page of ['discovery/static.md', 'discovery/ec2.md', 'discovery/docker.md', 'repositories/profefe.md', 'repositories/pyroscope.md', 'repositories/s3.md', 'repositories/directory.md']) {
    assert.ok(table.includes(`](${page})`), `the reference does not link ${page}`);
  }
});

// --- relative links in README.md and docs/ ---------------------------------

function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return ['README.md', ...docs.sort()];
}

/** The text outside fenced code blocks, line by line; inline code spans blanked. */
function proseLines(text: string): string[] {
  const out: string[] = [];
  let fence: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m?.[1] !== undefined) {
      if (fence === undefined) fence = m[1][0];
      else if (m[1][0] === fence) fence = undefined;
      out.push('');
      continue;
    }
    out.push(fence === undefined ? line : '');
  }
  return out;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped but - and _, each space a -; repeats get -1, -2. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m?.[1] === undefined) continue;
    const plain = m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

interface Link {
  readonly file: string;
  readonly line: number;
  readonly target: string;
}

function relativeLinks(file: string): Link[] {
  const links: Link[] = [];
  proseLines(readFileSync(join(ROOT, file), 'utf8')).forEach((raw, i) => {
    const line = raw.replace(/(`+)[^`]*?\1/g, '');
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
      links.push({ file, line: i + 1, target });
    }
  });
  return links;
}

void test('every relative link in README.md and docs/ reaches an existing file, and a heading there when it names one', () => {
  const files = markdownFiles();
  assert.ok(files.length > 10, `found only ${files.join(', ')}`);
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (path: string): Set<string> => {
    let a = anchorCache.get(path);
    if (!a) {
      a = anchorsOf(readFileSync(join(ROOT, path), 'utf8'));
      anchorCache.set(path, a);
    }
    return a;
  };
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    for (const link of relativeLinks(file)) {
      checked++;
      const where = `${link.file}:${link.line}: ${link.target}`;
      const hash = link.target.indexOf('#');
      const pathPart = decodeURI(hash < 0 ? link.target : link.target.slice(0, hash));
      const anchor = hash < 0 ? undefined : link.target.slice(hash + 1);
      if (pathPart.startsWith('/')) {
        broken.push(`${where}: an absolute path; links must be relative to the file`);
        continue;
      }
      const target = pathPart === '' ? link.file : relative(ROOT, join(ROOT, dirname(link.file), pathPart));
      if (target.startsWith('..') || !existsSync(join(ROOT, target))) {
        broken.push(`${where}: no file ${target}`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchors(target).has(decodeURIComponent(anchor))) {
        broken.push(`${where}: ${target} has no heading #${anchor}`);
      }
    }
  }
  assert.ok(checked > 50, `only ${checked} relative links found: is the link pattern right?`);
  assert.deepEqual(broken, []);
});
