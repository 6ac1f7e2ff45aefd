#!/bin/sh
# Records the commit the daemon is built from in dist/build-info.json, for
# `pprof-scraper --version` and the pprof_scraper_build_info metric: an
# installed daemon has no git to ask. Run by `npm run build`, after tsc.
#
# The commit is $PPROF_SCRAPER_COMMIT when set (a build from an exported tree,
# e.g. `docker build --build-arg PPROF_SCRAPER_COMMIT=$(git rev-parse HEAD)`),
# else this checkout's HEAD, with "-dirty" when tracked files differ from it;
# outside a git checkout of this very tree, "unknown".
set -eu
cd "$(dirname "$0")/.."

commit=${PPROF_SCRAPER_COMMIT:-}
if [ -n "$commit" ] && ! printf '%s' "$commit" | grep -Eqx '[0-9a-f]{7,64}(-dirty)?'; then
  echo "build-info: PPROF_SCRAPER_COMMIT=$commit is not a commit id (7 to 64 hex digits, optionally -dirty): unset it or pass \$(git rev-parse HEAD)" >&2
  exit 1
fi
if [ -z "$commit" ] && command -v git >/dev/null 2>&1 \
  && top=$(git rev-parse --show-toplevel 2>/dev/null) && [ "$top" = "$(pwd -P)" ]; then
  commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit-dirty"; fi
fi
[ -n "$commit" ] || commit=unknown
mkdir -p dist
printf '{"commit":"%s"}\n' "$commit" > dist/build-info.json
