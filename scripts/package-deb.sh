#!/bin/sh
# `npm run package`: builds pprof-scraper_<version>_all.deb at the repository
# root with dpkg-deb alone (no debhelper). The package holds:
#
#   /usr/lib/pprof-scraper/        package.json, dist/ (the built daemon), and its
#                                  production node_modules (`npm ci --omit=dev`,
#                                  install scripts as package.json's allowScripts says)
#   /usr/bin/pprof-scraper         a relative symlink to dist/cli/index.js
#   /usr/lib/systemd/system/pprof-scraper.service
#                                  systemd/pprof-scraper.service, with the package's
#                                  paths and its system user in place of DynamicUser
#   /etc/pprof-scraper/config.yaml a conffile: packaging/deb/config.yaml
#   /etc/default/pprof-scraper     a conffile: environment for the unit
#   /usr/share/doc/pprof-scraper/  README, docs, config.example.yaml, copyright
#
# The maintainer scripts (packaging/deb/) create the pprof-scraper system user
# and /var/lib/pprof-scraper. Environment: DEB_MAINTAINER sets the Maintainer
# field; PPROF_SCRAPER_COMMIT, when building from an exported tree, the commit
# that --version reports (scripts/build-info.sh).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)

fail() {
  echo "package: $*" >&2
  exit 1
}

command -v dpkg-deb >/dev/null || fail "dpkg-deb not found: run this on Debian or Ubuntu (apt-get install dpkg)"
command -v npm >/dev/null || fail "npm not found: install Node.js 20 or later with its npm"

VERSION=$(node -p 'require("./package.json").version')
case "$VERSION" in
  [0-9]*) ;;
  *) fail "package.json's version \"$VERSION\" is not a Debian upstream version (it must start with a digit)" ;;
esac
DEB="pprof-scraper_${VERSION}_all.deb"

# The daemon as `npm run build` makes it: the dev dependencies (TypeScript)
# must be installed first, as after `npm ci` in a clone.
[ -x node_modules/.bin/tsc ] || fail "node_modules/.bin/tsc not found: run npm ci first"
npm run --silent build

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/pprof-scraper-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM
PKG="$STAGE/pkg"
LIB="$PKG/usr/lib/pprof-scraper"
DOC="$PKG/usr/share/doc/pprof-scraper"
mkdir -p "$LIB" "$PKG/usr/bin" "$PKG/usr/lib/systemd/system" "$PKG/etc/pprof-scraper" "$PKG/etc/default" "$DOC/docs" "$PKG/DEBIAN"

# Production dependencies, exactly as locked. package.json goes in without its
# scripts: `npm ci` would run `prepare` (the TypeScript build) in a tree
# without sources. allowScripts stays, and decides which dependency may run
# an install script.
node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
  delete pkg.scripts;
  fs.writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n");
' "$LIB/package.json"
cp package-lock.json "$LIB/package-lock.json"
(cd "$LIB" && npm ci --omit=dev --no-audit --no-fund --loglevel=warn)
rm -rf "$LIB/node_modules/.bin"
# What never runs here: type declarations, source maps, and @datadog/pprof's
# native builds for other systems (macOS, Windows, musl). Linux x64 and arm64
# stay, for an architecture-independent package.
find "$LIB/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete
for dir in "$LIB"/node_modules/@datadog/pprof/prebuilds/*; do
  case "${dir##*/}" in
    linux-x64 | linux-arm64) find "$dir" -name '*musl*' -delete ;;
    *) rm -rf "$dir" ;;
  esac
done
[ -n "$(find "$LIB/node_modules/@datadog/pprof/prebuilds/linux-x64" -name '*.node' 2>/dev/null)" ] || fail "no linux-x64 build of @datadog/pprof left: its layout changed; update scripts/package-deb.sh"

# The built daemon, without source maps (they point at sources not shipped).
cp -R dist "$LIB/dist"
find "$LIB/dist" -name '*.map' -delete
[ -f "$LIB/dist/build-info.json" ] || fail "dist/build-info.json is missing: npm run build did not record the commit"
ln -s ../lib/pprof-scraper/dist/cli/index.js "$PKG/usr/bin/pprof-scraper"

# The unit, with the package's paths and its system user. Each substitution
# must happen: a change to the unit that defeats one fails here, not on a host.
UNIT="$PKG/usr/lib/systemd/system/pprof-scraper.service"
sed \
  -e '/^# Documentation= is the clone/d' \
  -e 's|^#Documentation=.*$|Documentation=file:///usr/share/doc/pprof-scraper/docs/operations.md|' \
  -e 's|/usr/local/bin/pprof-scraper|/usr/bin/pprof-scraper|' \
  -e 's|^DynamicUser=yes$|User=pprof-scraper\nGroup=pprof-scraper|' \
  -e 's|^# Install: copy to /etc/systemd/system/, put the config at$|# Installed by the pprof-scraper package. Edit the config at|' \
  -e 's|^# /etc/pprof-scraper/config.yaml, then `systemctl enable --now pprof-scraper`.$|# /etc/pprof-scraper/config.yaml, then `systemctl enable --now pprof-scraper`.|' \
  systemd/pprof-scraper.service > "$UNIT"
for want in '^Documentation=file:///usr/share/doc/pprof-scraper/' '^ExecStart=.* /usr/bin/pprof-scraper run --config /etc/pprof-scraper/config.yaml$' '^User=pprof-scraper$' '^Group=pprof-scraper$' '^# Installed by the pprof-scraper package'; do
  grep -q "$want" "$UNIT" || fail "the packaged unit has no line matching $want: systemd/pprof-scraper.service changed; update scripts/package-deb.sh"
done
! grep -q '^DynamicUser=' "$UNIT" || fail "the packaged unit still has DynamicUser="

cp packaging/deb/config.yaml "$PKG/etc/pprof-scraper/config.yaml"
cp packaging/deb/default "$PKG/etc/default/pprof-scraper"
cp README.md config.example.yaml packaging/deb/copyright "$DOC/"
cp docs/*.md "$DOC/docs/"

for f in postinst prerm postrm; do install -m 0755 "packaging/deb/$f" "$PKG/DEBIAN/$f"; done
install -m 0644 packaging/deb/conffiles "$PKG/DEBIAN/conffiles"
# Whatever the umask and npm left: directories 0755, files 0644, and the CLI executable
chmod -R u=rwX,go=rX "$PKG/usr" "$PKG/etc"
chmod 0755 "$LIB/dist/cli/index.js"

SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" \
  -e "s|@MAINTAINER@|${DEB_MAINTAINER:-pprof-scraper maintainers <pprof-scraper@localhost>}|" \
  -e "s|@INSTALLED_SIZE@|$SIZE|" \
  packaging/deb/control > "$PKG/DEBIAN/control"

rm -f "$ROOT/$DEB"
dpkg-deb --root-owner-group --build "$PKG" "$ROOT/$DEB" >/dev/null
echo "$DEB ($(du -k "$ROOT/$DEB" | cut -f1) KiB, $SIZE KiB installed)"
