/**
 * The convention for tests that need a real peer (Go, Docker, Chromium):
 *
 *   test('scrapes a real Go target', {skip: requirePeer('go', await goAvailable(), 'go not found on PATH')}, …)
 *
 * A missing peer skips the test with a reason that says what to install.
 * With PPROF_SCRAPER_REQUIRE_PEERS=1 (CI images that have every peer) a
 * missing peer is an error instead, so a broken image cannot turn the real
 * tests into silent skips.
 */

export type PeerName = 'go' | 'docker' | 'chromium' | 'systemd' | 'promtool' | 'debian' | 'nspawn' | 'protoc';

const PEERS: Record<PeerName, string> = {
  go: "Go (Debian's golang-go)",
  docker: "a Docker engine (Debian's docker.io, daemon running and its socket reachable)",
  chromium: "Chromium (Debian's chromium)",
  systemd: "systemd-analyze (Debian's systemd)",
  promtool: "promtool (Debian's prometheus)",
  debian: "root, dpkg-deb and debootstrap (Debian's dpkg and debootstrap) and a reachable Debian mirror, to install the .deb into a clean root",
  nspawn: "systemd-nspawn and nsenter (Debian's systemd-container and util-linux), to boot that root with systemd as a VM of its own",
  protoc: "protoc and Python's protobuf (Debian's protobuf-compiler, libprotobuf-dev and python3-protobuf)",
};

export const REQUIRE_PEERS_ENV = 'PPROF_SCRAPER_REQUIRE_PEERS';

export class PeerMissingError extends Error {
  override readonly name = 'PeerMissingError';
  constructor(
    readonly peer: PeerName,
    why: string,
  ) {
    super(`${REQUIRE_PEERS_ENV}=1: this run requires ${PEERS[peer]}, and it is missing: ${why}`);
  }
}

/**
 * Returns false when the peer is there (run the test), else a skip reason
 * for node:test's `{skip}`; throws PeerMissingError instead when
 * PPROF_SCRAPER_REQUIRE_PEERS=1.
 */
export function requirePeer(name: PeerName, available: boolean, why: string): string | false {
  if (available) return false;
  if (process.env[REQUIRE_PEERS_ENV] === '1') throw new PeerMissingError(name, why);
  return `needs ${PEERS[name]}: ${why}`;
}
