import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

// In a process of its own: the test runner's other files may have loaded dockerode whole already.
const script = `
import { createRequire } from 'node:module';
import { loadDockerode } from './src/discovery/providers/docker-client.ts';
const require = createRequire(import.meta.url);
const Docker = loadDockerode();
const loaded = () => Object.keys(require.cache);
const heavy = (re) => loaded().filter((f) => re.test(f)).length;
const before = { ssh2: heavy(/node_modules\\/ssh2\\//), grpc: heavy(/@grpc\\//), tar: heavy(/node_modules\\/tar-stream\\//) };
const docker = new Docker({ socketPath: '/nonexistent/docker.sock' });
// dockerode's API is whole: the SSH transport loads when a connection asks for it
const fromModem = createRequire(createRequire(require.resolve('dockerode')).resolve('docker-modem'));
const agent = fromModem('./ssh.js')({ host: '127.0.0.1' });
console.log(JSON.stringify({ before, after: { ssh2: heavy(/node_modules\\/ssh2\\//) > 0 }, list: typeof docker.listContainers, events: typeof docker.getEvents, agent: typeof agent?.createConnection }));
`;

test('dockerode loads without its SSH, BuildKit and build-context modules, which load on their first call', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, timeout: 60_000 });
  assert.deepEqual(JSON.parse(stdout), { before: { ssh2: 0, grpc: 0, tar: 0 }, after: { ssh2: true }, list: 'function', events: 'function', agent: 'function' });
});
