/**
 * The fenced blocks of docs/quickstart-ec2.md and the marks that say what
 * the test does with each. A mark is an HTML comment on the line before a
 * block (blank lines between are allowed):
 *
 *   <!-- quickstart: KIND [ARG] -->
 *
 * | KIND                  | ARG               | the block                                          |
 * |-----------------------|-------------------|----------------------------------------------------|
 * | go                    | a file name       | Go source, written to that file on a service VM    |
 * | service               |                   | shell, run on a service VM in that folder; the last line is the service, left running |
 * | security-group        |                   | JSON, the inbound rule (EC2's IpPermissions form)  |
 * | instances             |                   | a table: instance id, private IP, tags (k=v …)     |
 * | iam-policy            |                   | JSON, the daemon's IAM policy                      |
 * | build                 |                   | shell, run in a clone to build the .deb            |
 * | vm                    | retry=<N>s (opt.) | shell, run as root on the daemon's VM; with retry, again until the output block after it matches |
 * | output                |                   | what the `vm` block before it prints on stdout     |
 * | config                | an absolute path  | YAML, the file written at that path on the VM      |
 * | config-update         | an absolute path  | YAML whose top-level keys replace those of the file |
 *
 * A block without a mark, with an unknown kind or with wrong arguments is an
 * error: nothing in the page escapes the test. test/integration/
 * quickstart-ec2.test.ts says how each kind is checked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

export const QUICKSTART = 'docs/quickstart-ec2.md';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type BlockKind = 'go' | 'service' | 'security-group' | 'instances' | 'iam-policy' | 'build' | 'vm' | 'output' | 'config' | 'config-update';

/** Each kind, and whether it takes an argument: 'required', 'none', or a pattern for an optional one. */
const KINDS: Record<BlockKind, 'required' | 'none' | RegExp> = {
  go: 'required',
  service: 'none',
  'security-group': 'none',
  instances: 'none',
  'iam-policy': 'none',
  build: 'none',
  vm: /^retry=\d+s$/,
  output: 'none',
  config: 'required',
  'config-update': 'required',
};

export interface Block {
  readonly kind: BlockKind;
  readonly arg: string | undefined;
  /** The fence's info string (`sh`, `yaml`, …). */
  readonly lang: string;
  readonly text: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

export interface ParsedDoc {
  readonly text: string;
  readonly blocks: Block[];
  /** Blocks with no mark or a wrong one, marks with no block: `line N: …`. */
  readonly errors: string[];
}

const MARK = /^<!--\s*quickstart:\s*(.*?)\s*-->$/;
const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;

export function parseQuickstart(text: string = readFileSync(join(ROOT, QUICKSTART), 'utf8')): ParsedDoc {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const errors: string[] = [];
  let mark: { words: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = MARK.exec(line.trim());
    if (m) {
      if (mark) errors.push(`line ${mark.line}: a quickstart mark with no block after it`);
      mark = { words: m[1]!.split(/\s+/).filter(Boolean), line: i + 1 };
      continue;
    }
    if (line.includes('quickstart:') && line.includes('<!--')) errors.push(`line ${i + 1}: not a mark of the form <!-- quickstart: KIND [ARG] -->: ${line.trim()}`);
    const fence = FENCE.exec(line);
    if (!fence) {
      if (line.trim() !== '' && mark) {
        errors.push(`line ${mark.line}: a quickstart mark with no block after it`);
        mark = undefined;
      }
      continue;
    }
    const [, open, lang] = fence;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s{0,3}${open![0] === '`' ? '`' : '~'}{${open!.length},}\\s*$`).test(lines[j]!)) body.push(lines[j++]!);
    if (j === lines.length) errors.push(`line ${i + 1}: a code block that never closes`);
    const where = `line ${i + 1} (\`\`\`${lang ?? ''})`;
    if (!mark) {
      errors.push(`${where}: a code block with no <!-- quickstart: KIND --> mark before it`);
    } else {
      const [kind, arg, ...more] = mark.words;
      const rule = kind !== undefined && Object.hasOwn(KINDS, kind) ? KINDS[kind as BlockKind] : undefined;
      if (rule === undefined) errors.push(`${where}: unknown mark kind ${JSON.stringify(kind ?? '')} (known: ${Object.keys(KINDS).join(', ')})`);
      else if (more.length > 0 || (rule === 'none' && arg !== undefined) || (rule === 'required' && arg === undefined) || (rule instanceof RegExp && arg !== undefined && !rule.test(arg))) {
        errors.push(`${where}: wrong arguments for ${kind}: ${JSON.stringify(mark.words.slice(1).join(' '))}`);
      } else {
        blocks.push({ kind: kind as BlockKind, arg, lang: lang ?? '', text: body.join('\n') + '\n', line: i + 1 });
      }
    }
    mark = undefined;
    i = j;
  }
  if (mark) errors.push(`line ${mark.line}: a quickstart mark with no block after it`);
  return { text, blocks, errors };
}

/** A config-update block applied to a config: its top-level keys replace the file's (comments elsewhere kept). */
export function applyConfigUpdate(config: string, update: string): string {
  const doc = parseDocument(config);
  const patch = parseDocument(update);
  const keys = patch.contents && 'items' in patch.contents ? (patch.contents.items as { key: unknown }[]) : [];
  for (const item of keys) {
    const key = String((item.key as { value?: unknown }).value ?? item.key);
    doc.set(key, patch.get(key, true));
  }
  return doc.toString();
}

/** Every config file the page has the reader write, as it stands after each block: name → text. */
export function quickstartConfigs(parsed: ParsedDoc = parseQuickstart()): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  const files = new Map<string, string>();
  for (const b of parsed.blocks) {
    if (b.kind === 'config') files.set(b.arg!, b.text);
    else if (b.kind === 'config-update') {
      const before = files.get(b.arg!);
      if (before === undefined) throw new Error(`${QUICKSTART}:${b.line}: config-update of ${b.arg} before any config block writes it`);
      files.set(b.arg!, applyConfigUpdate(before, b.text));
    } else continue;
    out.push({ name: `${QUICKSTART}:${b.line} (${b.arg} after this block)`, text: files.get(b.arg!)! });
  }
  return out;
}
