/**
 * docs/quickstart-ec2.md, followed: every fenced block of the page is run
 * or checked, so the page cannot rot.
 *
 * Each block carries a mark, `<!-- quickstart: KIND [ARG] -->` on the line
 * before it (test/helpers/quickstart-doc.ts parses them); a block without
 * one, or with an unknown kind, fails the first test below. How each kind
 * is checked:
 *
 * - `go FILE`: written to FILE in the service's folder and built by the
 *   `service` block with this machine's Go; its pprof listener
 *   (`http.ListenAndServe(ADDR, nil)`) must not be a loopback address and
 *   must be on the config's port. The program is the real target: the
 *   profiles Pyroscope gets are its own (`main.main` in its goroutines).
 * - `service`: run in that folder; every line but the last must exit 0, the
 *   last (the service) stays up until the end, and must answer on each
 *   tagged instance's address.
 * - `security-group`: parsed; TCP, one port, the config's port and the Go
 *   listener's; its source a security group, never an address range.
 * - `instances`: the EC2 fake serves exactly these instances, tags as
 *   written; the rows whose tags pass the config's filters must be the
 *   targets (and the one that does not, not).
 * - `iam-policy`: parsed; Allow on "*"; its EC2 actions must be exactly
 *   those the EC2 provider's source sends, and exactly those the EC2 fake
 *   saw during the run.
 * - `build`: must be exactly `npm ci` and `npm run package`, mapped below.
 * - `vm`: run as root by bash -e on the daemon's VM, from /root: must exit
 *   0; with `retry=Ns`, run every 3 s until it exits 0 and the `output`
 *   block after it matches, for at most N seconds.
 * - `output`: the stdout of the `vm` block before it must hold these lines
 *   (blank ones aside) in a row: `…` stands for any text within a line, a
 *   run of spaces for any run of spaces.
 * - `config PATH`: written to PATH on the VM, as an editor would (owner and
 *   mode kept); `config-update PATH`: its top-level keys replace the
 *   file's. Both also pass the JSON Schema and the daemon's check in
 *   test/unit/config-json-schema.test.ts.
 *
 * The daemon's VM is the clean Debian 12 root of the package test
 * (test/helpers/debian-root.ts) booted with systemd-nspawn, systemd its PID
 * 1, in a network namespace of its own (test/helpers/vm.ts): `apt-get
 * install` installs the .deb, `systemctl enable --now` starts the packaged
 * unit with its hardening, `systemctl reload` sends it SIGHUP, journalctl
 * reads its log. The services' VMs are this machine's Go and files, run in
 * the VM's network namespace. What the test cannot have (AWS, the network
 * names, Node's apt repository) is replaced as MAPPINGS lists, each entry's
 * text asserted to stand in the page. Nothing leaves loopback.
 *
 * With a cached root and .deb build, the test takes about 3 minutes, most
 * of it waiting for the first scrapes (every minute, as the page says).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildDeb, cleanRoot, debianRootMissing, PACKAGE_VERSION, standInNodejs } from '../helpers/debian-root.js';
import { FAKE_ACCESS_KEY_ID, startEc2Fake } from '../helpers/ec2-fake.js';
import type { Ec2Fake, FakeInstance } from '../helpers/ec2-fake.js';
import { goCommandEnv, goStatus } from '../helpers/go-target.js';
import { bridgeIntoNetns } from '../helpers/netns-bridge.js';
import type { NetnsBridge } from '../helpers/netns-bridge.js';
import { requirePeer } from '../helpers/peers.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import type { ProfefeFake } from '../helpers/profefe-fake.js';
import { startPyroscopeFake } from '../helpers/pyroscope-fake.js';
import type { PyroscopeFake } from '../helpers/pyroscope-fake.js';
import { applyConfigUpdate, parseQuickstart, QUICKSTART } from '../helpers/quickstart-doc.js';
import type { Block } from '../helpers/quickstart-doc.js';
import { bootVm, vmMissing } from '../helpers/vm.js';
import type { Vm } from '../helpers/vm.js';
import { waitUntil } from '../helpers/wait.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const doc = parseQuickstart();
const blocks = (kind: Block['kind']): Block[] => doc.blocks.filter((b) => b.kind === kind);
const one = (kind: Block['kind']): Block => {
  const found = blocks(kind);
  assert.equal(found.length, 1, `${QUICKSTART} has ${found.length} ${kind} blocks, the test expects one`);
  return found[0]!;
};

/** Inside the VM, where the fakes answer (bridged from this process's loopback). */
const EC2_INSIDE = '127.0.0.1:4566';
const PYROSCOPE_HOST = 'pyroscope.internal';
const PROFEFE_HOST = 'profefe.internal';

/**
 * What the test puts in place of what it cannot have. `doc` must stand in
 * the page (a renamed host or a changed step fails here), `here` is what the
 * test does instead.
 */
const MAPPINGS: readonly { doc: string; here: string }[] = [
  { doc: '10.0.1.', here: "the VPC's private addresses: each instance is at 127.0.0.N for 10.0.1.N, in the `instances` block and in the sample outputs alike" },
  { doc: `http://${PYROSCOPE_HOST}:4040`, here: `${PYROSCOPE_HOST} is 127.0.0.1 in the VM's /etc/hosts; its port 4040 there is bridged to the Pyroscope fake` },
  { doc: `http://${PROFEFE_HOST}:10100`, here: `${PROFEFE_HOST} is 127.0.0.1 in the VM's /etc/hosts; its port 10100 there is bridged to the profefe fake` },
  {
    doc: "attach it to the daemon's instance",
    here: `no instance role: fake keys and the EC2 endpoint http://${EC2_INSIDE} (bridged to the EC2 fake) in /root/.aws/ for root's shell and sudo, and in /etc/default/pprof-scraper for the unit, written once the package has installed that file`,
  },
  { doc: 'install Node.js there', here: "a stand-in nodejs package holding the node running this test, installed on the VM with dpkg -i (Node's apt repository is not reachable)" },
  { doc: '(`scp`)', here: 'the .deb is copied into /root of the VM' },
  { doc: 'npm ci\nnpm run package\n', here: "the `build` block must be exactly these lines: `npm ci` is not run (it would replace this checkout's node_modules, installed already), `npm run package` runs as the package test runs it (test/helpers/debian-root.ts buildDeb)" },
  { doc: '(`sudoedit` it)', here: '`config` blocks are written to the file by the test' },
  { doc: 'Build and run it on each instance', here: "one service process for every instance: this machine's Go and files, run in the VM's network namespace, where `:6060` is every 127.0.0.N" },
];

// --- the page's data blocks, read once: the config, the Go listener, the instances

interface Ec2Entry {
  region: string;
  filters: Record<string, string | string[]>;
  port: number;
  service_tag: string;
  address: string;
}

function ec2Entry(): Ec2Entry {
  const config = parse(one('config').text) as { discovery: { ec2?: Ec2Entry }[] };
  const entries = config.discovery.filter((d) => d.ec2 !== undefined);
  assert.equal(entries.length, 1, 'the config has one ec2 entry');
  return entries[0]!.ec2!;
}

/** `http.ListenAndServe(ADDR, nil)`: the pprof listener (net/http/pprof registers on the default mux). */
function pprofListener(): { host: string; port: number } {
  const source = one('go').text;
  assert.match(source, /^\s*_ "net\/http\/pprof"/m, 'main.go imports net/http/pprof');
  const m = /http\.ListenAndServe\("([^"]*):(\d+)", nil\)/.exec(source);
  assert.ok(m, 'main.go serves the default mux (pprof) with http.ListenAndServe("HOST:PORT", nil)');
  return { host: m[1]!, port: Number(m[2]) };
}

interface InstanceRow {
  id: string;
  /** As the page writes it. */
  ip: string;
  tags: Record<string, string>;
}

function instanceRows(): InstanceRow[] {
  const [header, ...rows] = one('instances').text.trim().split('\n');
  assert.match(header ?? '', /^INSTANCE\s+PRIVATE IP\s+TAGS$/);
  return rows.map((row) => {
    const [id, ip, ...tags] = row.trim().split(/\s+/);
    assert.match(id ?? '', /^i-[0-9a-f]{17}$/, `an instance id: ${row}`);
    assert.match(ip ?? '', /^\d+\.\d+\.\d+\.\d+$/, `a private IP: ${row}`);
    return { id: id!, ip: ip!, tags: Object.fromEntries(tags.map((t) => t.split('=', 2) as [string, string])) };
  });
}

/** The page's 10.0.1.N as the test has it: 127.0.0.N (MAPPINGS). */
const mapText = (text: string): string => text.replaceAll(MAPPINGS[0]!.doc, '127.0.0.');

/** Whether an instance passes DescribeInstances filters on tags (the only kind the page uses). */
function passes(row: InstanceRow, filters: Ec2Entry['filters']): boolean {
  return Object.entries(filters).every(([name, value]) => {
    assert.match(name, /^tag:/, `the page filters on tags only (${name})`);
    const have = row.tags[name.slice(4)];
    return have !== undefined && (Array.isArray(value) ? value : [value]).includes(have);
  });
}

/** The EC2 actions the provider's source sends: the *Command classes it takes from @aws-sdk/client-ec2. */
async function ec2ActionsInSource(): Promise<Set<string>> {
  const actions = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ts')) {
        const text = await readFile(path, 'utf8');
        const imports = /(?:import\s*\{([^}]*)\}\s*from\s*|\{([^}]*)\}\s*=\s*await\s+import\()\s*'@aws-sdk\/client-ec2'/g;
        for (const m of text.matchAll(imports)) for (const c of (m[1] ?? m[2] ?? '').matchAll(/\b(\w+)Command\b/g)) actions.add(`ec2:${c[1]!}`);
      }
    }
  };
  await walk(join(REPO, 'src'));
  return actions;
}

function policyActions(): Set<string> {
  const policy = JSON.parse(one('iam-policy').text) as { Version: string; Statement: { Effect: string; Action: string | string[]; Resource: string | string[] }[] };
  assert.equal(policy.Version, '2012-10-17');
  const actions = new Set<string>();
  for (const s of policy.Statement) {
    assert.equal(s.Effect, 'Allow');
    assert.deepEqual([s.Resource].flat(), ['*'], 'DescribeInstances takes no resource-level permissions');
    for (const a of [s.Action].flat()) actions.add(a);
  }
  return actions;
}

/** Whether `actual` holds the output block's lines in a row (see the comment at the top). */
function outputMatches(expected: string, actual: string): boolean {
  const lineRe = (line: string): RegExp =>
    new RegExp(
      '^' +
        mapText(line.trimEnd())
          .split('…')
          .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ +/g, ' +'))
          .join('.*') +
        '$',
    );
  const want = expected.split('\n').filter((l) => l.trim() !== '').map(lineRe);
  const have = actual.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  for (let start = 0; start + want.length <= have.length; start++) {
    if (want.every((re, i) => re.test(have[start + i]!))) return true;
  }
  return false;
}

test(`${QUICKSTART}: every code block has a known mark, and what the test maps stands in the page`, () => {
  assert.deepEqual(doc.errors, []);
  for (const kind of ['go', 'service', 'security-group', 'instances', 'iam-policy', 'build', 'vm', 'output', 'config'] as const) assert.ok(blocks(kind).length > 0, `no ${kind} block`);
  doc.blocks.forEach((b, i) => {
    if (b.kind === 'output') assert.equal(doc.blocks[i - 1]?.kind, 'vm', `${QUICKSTART}:${b.line}: an output block follows a vm block`);
  });
  for (const m of MAPPINGS) assert.ok(doc.text.includes(m.doc), `${QUICKSTART} no longer says ${JSON.stringify(m.doc)}: update MAPPINGS (${m.here})`);
  // the package the page names is the one `npm run package` writes
  for (const m of doc.text.matchAll(/pprof-scraper_([^_\s]+)_all\.deb/g)) assert.ok(m[1] === '*' || m[1] === PACKAGE_VERSION, `${QUICKSTART} names ${m[0]}; the package is ${PACKAGE_VERSION}`);
  assert.equal(one('build').text, MAPPINGS.find((m) => m.here.startsWith('the `build` block'))!.doc);
  // the self-check of the output matcher
  assert.ok(outputMatches('a  …  b\nc', 'x\na 1 b\nc\n'));
  assert.ok(!outputMatches('a\nc', 'a\nb\nc\n'));
});

test(`${QUICKSTART}: the Go listener, the security group, the config and the tags agree; the IAM policy names what the daemon calls`, async () => {
  const ec2 = ec2Entry();
  const listener = pprofListener();
  assert.ok(!/^(localhost|127\.|\[?::1\]?$)/.test(listener.host), `the pprof listener ${listener.host}:${listener.port} must be reachable from another VM`);
  assert.equal(listener.port, ec2.port, 'the Go listener is on the config port');
  assert.equal(ec2.address, 'private_ip');

  const rule = JSON.parse(one('security-group').text) as { IpProtocol: string; FromPort: number; ToPort: number; UserIdGroupPairs?: { GroupId: string }[]; IpRanges?: unknown[]; Ipv6Ranges?: unknown[] };
  assert.equal(rule.IpProtocol, 'tcp');
  assert.deepEqual([rule.FromPort, rule.ToPort], [ec2.port, ec2.port], 'the rule opens the config port, and only it');
  assert.ok((rule.UserIdGroupPairs ?? []).length > 0 && rule.UserIdGroupPairs!.every((p) => /^sg-[0-9a-f]+$/.test(p.GroupId)), 'the source is the daemon\'s security group');
  assert.equal(rule.IpRanges, undefined, 'no address range');
  assert.equal(rule.Ipv6Ranges, undefined, 'no address range');

  const rows = instanceRows();
  const tagged = rows.filter((r) => passes(r, ec2.filters));
  assert.ok(tagged.length >= 2 && tagged.length < rows.length, 'some instances pass the filter, at least one does not');
  for (const r of tagged) assert.ok(r.tags[ec2.service_tag], `${r.id} has the service tag ${ec2.service_tag}`);
  assert.ok(doc.text.includes(ec2.region), 'the region is named in the page');

  const source = await ec2ActionsInSource();
  assert.deepEqual(source, new Set(['ec2:DescribeInstances']), 'the EC2 calls in src/ changed: update the policy in the page');
  assert.deepEqual(policyActions(), source, 'the policy allows exactly what the daemon calls');
});

// --- the run

const rootMissing = await debianRootMissing();
const vmLacks = await vmMissing();
const go = await goStatus();
const skip = requirePeer('debian', rootMissing.length === 0, rootMissing.join('; ')) || requirePeer('nspawn', vmLacks.length === 0, vmLacks.join('; ')) || requirePeer('go', go.available, go.why);

let cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

/** Runs a `vm` block; with retry, until it succeeds and its output block matches. Its stdout. */
async function runVmBlock(vm: Vm, block: Block, output: Block | undefined): Promise<string> {
  const retryS = block.arg === undefined ? 0 : Number(/^retry=(\d+)s$/.exec(block.arg)![1]);
  const deadline = Date.now() + retryS * 1000;
  for (;;) {
    const r = await vm.sh(block.text, { timeoutMs: 180_000 });
    const matched = r.code === 0 && (output === undefined || outputMatches(output.text, r.stdout));
    if (matched) return r.stdout;
    if (Date.now() >= deadline) {
      const what = r.code !== 0 ? `exited ${r.code}` : `printed what the output block at line ${output!.line} does not match`;
      assert.fail(`${QUICKSTART}:${block.line}: ${what}${retryS > 0 ? ` (tried for ${retryS} s)` : ''}:\n${block.text}--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}--- expected:\n${output?.text ?? '(exit 0)'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

/** Starts the `service` block's lines in `dir`: all but the last to their end, the last left running. */
async function startService(vm: Vm, block: Block, dir: string, addresses: string[]): Promise<ChildProcess> {
  const lines = block.text.trim().split('\n');
  const env = { ...(await goCommandEnv()), PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const setup = vm.spawnInNetns('/bin/sh', ['-e', '-c', lines.slice(0, -1).join('\n')], { cwd: dir, env });
  let setupOut = '';
  setup.stdout?.setEncoding('utf8').on('data', (s: string) => (setupOut += s));
  setup.stderr?.setEncoding('utf8').on('data', (s: string) => (setupOut += s));
  const code = await new Promise<number | null>((resolve) => setup.once('exit', resolve));
  assert.equal(code, 0, `${QUICKSTART}:${block.line}: the service's build failed:\n${setupOut}`);
  const service = vm.spawnInNetns('/bin/sh', ['-c', `exec ${lines.at(-1)!}`], { cwd: dir, env });
  let serviceOut = '';
  service.stdout?.setEncoding('utf8').on('data', (s: string) => (serviceOut = (serviceOut + s).slice(-8192)));
  service.stderr?.setEncoding('utf8').on('data', (s: string) => (serviceOut = (serviceOut + s).slice(-8192)));
  cleanup.push(async () => {
    if (service.exitCode !== null || service.signalCode !== null) return;
    const exited = new Promise((resolve) => service.once('exit', resolve));
    service.kill('SIGTERM');
    await exited;
  });
  // every instance's address reaches it, from the daemon's VM
  const probe = addresses.map((a) => `curl -sf -o /dev/null http://${a}/debug/pprof/`).join(' && ');
  await waitUntil(() => `the service on ${addresses.join(', ')} (its output: ${serviceOut})`, async () => service.exitCode === null && (await vm.sh(probe)).code === 0, { timeoutMs: 30_000, everyMs: 500 });
  return service;
}

test(`${QUICKSTART}, followed: the .deb on a booted Debian VM finds the tagged instances, scrapes the real Go service and ships its profiles to Pyroscope and profefe`, { skip, timeout: 30 * 60_000 }, async () => {
  const ec2Config = ec2Entry();
  const rows = instanceRows();
  const tagged = rows.filter((r) => passes(r, ec2Config.filters));
  const untagged = rows.filter((r) => !passes(r, ec2Config.filters));
  const address = (r: InstanceRow): string => `${mapText(r.ip)}:${ec2Config.port}`;

  const work = await mkdtemp(join(tmpdir(), 'pprof-scraper-quickstart-'));
  cleanup.push(() => rm(work, { recursive: true, force: true }));

  // --- the fakes: EC2 serving the page's instances, Pyroscope, profefe
  const ec2: Ec2Fake = await startEc2Fake();
  cleanup.push(() => ec2.close());
  ec2.setInstances(
    ec2Config.region,
    rows.map((r): FakeInstance => ({ id: r.id, privateIp: mapText(r.ip), az: `${ec2Config.region}a`, type: 't3.small', tags: r.tags })),
  );
  const pyroscope: PyroscopeFake = await startPyroscopeFake();
  cleanup.push(() => pyroscope.close());
  const profefe: ProfefeFake = await startProfefeFake();
  cleanup.push(() => profefe.close());

  // --- the daemon's VM: a clean root with the .deb and Node copied in, booted
  const root = join(work, 'root');
  await cleanRoot(root);
  const { deb } = await buildDeb(work);
  await copyFile(deb, join(root, 'root', deb.slice(deb.lastIndexOf('/') + 1)));
  const nodejs = await standInNodejs(work);
  await copyFile(nodejs, join(root, 'root', 'nodejs-stand-in.deb'));
  const hostname = (await readFile(join(root, 'etc', 'hostname'), 'utf8').catch(() => 'localhost')).trim();
  await writeFile(join(root, 'etc', 'hosts'), `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n127.0.0.1 ${PYROSCOPE_HOST} ${PROFEFE_HOST}\n`);
  await mkdir(join(root, 'root', '.aws'), { mode: 0o700 });
  await writeFile(join(root, 'root', '.aws', 'config'), `[default]\nendpoint_url = http://${EC2_INSIDE}\n`);
  await writeFile(join(root, 'root', '.aws', 'credentials'), `[default]\naws_access_key_id = ${FAKE_ACCESS_KEY_ID}\naws_secret_access_key = fake-secret-access-key\n`, { mode: 0o600 });

  const vm = await bootVm(root);
  cleanup.push(() => vm.stop());
  const bridge: NetnsBridge = await bridgeIntoNetns(vm.netns, work, [
    { inside: EC2_INSIDE, to: new URL(ec2.url).host },
    { inside: '127.0.0.1:4040', to: new URL(pyroscope.url).host },
    { inside: '127.0.0.1:10100', to: new URL(profefe.url).host },
  ]);
  cleanup.push(() => bridge.close());
  const node = await vm.sh('dpkg -i nodejs-stand-in.deb');
  assert.equal(node.code, 0, node.stderr);

  // --- the page, block by block
  const serviceDir = join(work, 'service');
  await mkdir(serviceDir);
  const outputs = new Map<Block, string>();
  for (const [i, block] of doc.blocks.entries()) {
    const next = doc.blocks[i + 1];
    switch (block.kind) {
      case 'go':
        await writeFile(join(serviceDir, block.arg!), block.text);
        break;
      case 'service':
        await startService(vm, block, serviceDir, tagged.map(address));
        break;
      case 'security-group':
      case 'iam-policy':
      case 'instances':
      case 'build':
      case 'output':
        // checked by the first two tests and after the run; the instances are the EC2 fake's
        break;
      case 'config':
        await writeFile(join(root, block.arg!), block.text);
        break;
      case 'config-update': {
        const file = join(root, block.arg!);
        await writeFile(file, applyConfigUpdate(await readFile(file, 'utf8'), block.text));
        break;
      }
      case 'vm': {
        outputs.set(block, await runVmBlock(vm, block, next?.kind === 'output' ? next : undefined));
        if (/apt-get install/.test(block.text)) {
          // MAPPINGS: the unit's AWS settings, in the file the package installed for them
          await appendFile(join(root, 'etc', 'default', 'pprof-scraper'), `AWS_ACCESS_KEY_ID=${FAKE_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY=fake-secret-access-key\nAWS_ENDPOINT_URL_EC2=http://${EC2_INSIDE}\n`);
        }
        break;
      }
    }
  }

  // --- what came of it
  // the dry run: the tagged instances, not the other one
  const dryRun = [...outputs].find(([b]) => /pprof-scraper targets/.test(b.text))?.[1] ?? '';
  for (const r of tagged) assert.match(dryRun, new RegExp(`^${r.tags[ec2Config.service_tag]!}\\s+${address(r).replaceAll('.', '\\.')}\\s+ec2\\s`, 'm'));
  for (const r of untagged) assert.ok(!dryRun.includes(mapText(r.ip)), `${r.id} is not a target:\n${dryRun}`);

  // EC2 was asked what the policy allows, and nothing else, signed, in the config's region, with its filter
  assert.ok(ec2.requests.length > 0);
  assert.deepEqual(new Set(ec2.requests.map((r) => `ec2:${r.action}`)), policyActions());
  for (const r of ec2.requests) {
    assert.equal(r.signed, true);
    assert.equal(r.region, ec2Config.region);
    assert.equal(r.status, 200);
    assert.deepEqual(r.filters['tag:pprof'], ['true']);
  }

  // the daemon runs under systemd as its own user
  const unit = await vm.sh('ps -o user= -p "$(systemctl show --property MainPID --value pprof-scraper)"; systemctl show --property ActiveState --value pprof-scraper');
  assert.equal(unit.stdout, 'pprof-scraper\nactive\n', unit.stderr);

  // Pyroscope has every tagged instance's profiles, named by its Name tag, from the real Go program
  await waitUntil(
    () => `a profile of each instance at Pyroscope; it has ${JSON.stringify([...new Set(pyroscope.received.map((s) => s.label('instance')))])}`,
    () => tagged.every((r) => pyroscope.received.some((s) => s.label('instance') === address(r))),
    { timeoutMs: 120_000, everyMs: 1000 },
  );
  for (const r of tagged) {
    const series = pyroscope.received.filter((s) => s.label('instance') === address(r));
    for (const s of series) {
      assert.equal(s.label('service_name'), r.tags[ec2Config.service_tag]);
      assert.equal(s.label('instance_id'), r.id);
      assert.equal(s.label('provider'), 'ec2');
      assert.equal(s.label('region'), ec2Config.region);
      assert.equal(s.label('env'), 'prod');
      // the labels the page lists
      for (const name of ['instance_type', 'availability_zone', 'vpc_id', 'image_id']) assert.ok(s.label(name), `${name} on ${JSON.stringify(s.labels)}`);
    }
  }
  const goroutines = pyroscope.received.find((s) => s.label('__name__') === 'goroutine');
  assert.ok(goroutines, `a goroutine profile at Pyroscope; it has ${JSON.stringify([...new Set(pyroscope.received.map((s) => s.label('__name__')))])}`);
  const functions = goroutines.profile.function.map((f) => goroutines.profile.stringTable.strings[Number(f.name)]);
  assert.ok(functions.includes('main.main'), `the page's program is what was profiled: ${functions.join(', ')}`);
  assert.deepEqual(pyroscope.rejected, []);

  // profefe, after the reload
  const services = new Set(profefe.received.map((p) => p.service));
  for (const r of tagged) assert.ok(services.has(r.tags[ec2Config.service_tag]!), `profefe has ${r.tags[ec2Config.service_tag]}`);
  assert.deepEqual(profefe.rejected, []);
});
