import { readFileSync } from 'node:fs';

/** What `--version` prints and pprof_scraper_build_info carries. */
export interface BuildInfo {
  readonly version: string;
  /** The git commit the build came from (scripts/build-info.sh), or "unknown". */
  readonly commit: string;
  /** process.version: the Node the daemon runs on, which the package does not pin. */
  readonly node: string;
}

const COMMIT = /^[0-9a-f]{7,64}(-dirty)?$/;
let cached: BuildInfo | undefined;

/**
 * Read once from package.json and dist/build-info.json, both found relative to
 * this file, so an unpacked tree or the .deb's /usr/lib/pprof-scraper works
 * wherever it sits. Run from the sources (tsx), there is no build-info.json:
 * the commit is "unknown", as for a build made outside git.
 */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  let commit = 'unknown';
  try {
    const recorded = (JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8')) as { commit?: unknown }).commit;
    if (typeof recorded === 'string' && COMMIT.test(recorded)) commit = recorded;
  } catch {
    // not built by `npm run build`: the commit is unknown
  }
  cached = { version: pkg.version, commit, node: process.version };
  return cached;
}

/** `pprof-scraper --version`. */
export function versionText(info: BuildInfo = buildInfo()): string {
  return `pprof-scraper ${info.version}\ncommit ${info.commit}\nnode ${info.node}`;
}
