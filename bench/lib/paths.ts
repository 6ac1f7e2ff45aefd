/**
 * Repository paths, for the bench processes that run from source (fleet,
 * sink, orchestrator). The relay is transpiled to node_modules/.cache before
 * it runs, where these URLs would point elsewhere, so it must not import this.
 */
import {fileURLToPath} from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES_DIR = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** node's own flags for the daemon, as `npm start`, the systemd unit and the image run it. */
export const DAEMON_NODE_FLAGS = ['--liftoff-only', '--heap-growing-percent=50'];
