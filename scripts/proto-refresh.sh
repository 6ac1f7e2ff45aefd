#!/bin/sh
# Refreshes the vendored .proto files under proto/ from checkouts of their
# repositories, then regenerates the TypeScript under src/proto/gen/ with
# protoc-gen-es (a dev dependency). The generated code is committed, so
# neither a build nor a user of the daemon needs protoc.
#
#   scripts/proto-refresh.sh OTEL_PROTO_DIR PARCA_DIR GOOGLEAPIS_DIR PYROSCOPE_DIR
#     OTEL_PROTO_DIR  a checkout of github.com/open-telemetry/opentelemetry-proto
#                     at the tag below (OTEL_TAG)
#     PARCA_DIR       a checkout of github.com/parca-dev/parca
#     GOOGLEAPIS_DIR  a checkout of github.com/googleapis/googleapis
#     PYROSCOPE_DIR   a checkout of github.com/grafana/pyroscope
#   scripts/proto-refresh.sh --generate   only regenerate from proto/ as it is
#     (PROTO_GEN_OUT=DIR writes elsewhere: the test that the committed code is
#     what the vendored files give does)
#
# Needs protoc (Debian: protobuf-compiler, with libprotobuf-dev for the
# google/protobuf imports). Each folder keeps its project's LICENSE and a
# VERSION file saying what it was taken from. Each checkout is read at its
# HEAD (the OTLP one at OTEL_TAG); bare clones do.
#
# Pyroscope's push.proto and types.proto carry gnostic OpenAPI annotations
# (examples for its generated API docs). They change nothing on the wire, and
# keeping them would vendor and load gnostic's OpenAPI v3 model, so they are
# taken out here (the only change made to a vendored file; VERSION says so).
#
# OTLP profiles are in development (v1development): their field numbers have
# moved between releases. Bump OTEL_TAG on purpose only, with the conversion
# (src/repositories/otlp-convert.ts) and docs/repositories/otlp.md.
set -eu
OTEL_TAG=v1.11.0
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# git show rev:path for a path of a checkout, at rev
take() { # repo rev path dest
  mkdir -p "$(dirname "$4")"
  git -C "$1" show "$2:$3" > "$4"
}

if [ "${1:-}" != "--generate" ]; then
  [ $# -eq 4 ] || { sed -n 2,27p "$0"; exit 2; }
  OTEL=$1 PARCA=$2 GAPI=$3 PYRO=$4
  rm -rf proto
  for f in collector/profiles/v1development/profiles_service.proto profiles/v1development/profiles.proto common/v1/common.proto resource/v1/resource.proto; do
    take "$OTEL" "$OTEL_TAG" "opentelemetry/proto/$f" "proto/opentelemetry/proto/$f"
  done
  take "$OTEL" "$OTEL_TAG" LICENSE proto/opentelemetry/LICENSE
  echo "github.com/open-telemetry/opentelemetry-proto $OTEL_TAG ($(git -C "$OTEL" rev-parse "$OTEL_TAG^{commit}"))" > proto/opentelemetry/VERSION

  PARCA_REV=$(git -C "$PARCA" rev-parse HEAD)
  take "$PARCA" "$PARCA_REV" proto/parca/profilestore/v1alpha1/profilestore.proto proto/parca/profilestore/v1alpha1/profilestore.proto
  take "$PARCA" "$PARCA_REV" proto/LICENSE proto/parca/LICENSE
  echo "github.com/parca-dev/parca $PARCA_REV ($(git -C "$PARCA" log -1 --format=%cs "$PARCA_REV"))" > proto/parca/VERSION

  GAPI_REV=$(git -C "$GAPI" rev-parse HEAD)
  for f in rpc/status.proto rpc/error_details.proto api/annotations.proto api/http.proto; do
    take "$GAPI" "$GAPI_REV" "google/$f" "proto/google/$f"
  done
  take "$GAPI" "$GAPI_REV" LICENSE proto/google/LICENSE
  echo "github.com/googleapis/googleapis $GAPI_REV ($(git -C "$GAPI" log -1 --format=%cs "$GAPI_REV"))" > proto/google/VERSION

  PYRO_REV=$(git -C "$PYRO" rev-parse HEAD)
  for f in push/v1/push.proto types/v1/types.proto; do
    take "$PYRO" "$PYRO_REV" "api/$f" "proto/pyroscope/$f"
    sed -i -e '/^import "gnostic\//d' -e '/^ *option (gnostic\./d' \
      -e 's/ \[(gnostic\.openapi\.v3\.property)\.example = {yaml: "[^"]*"}\]//' "proto/pyroscope/$f"
    if grep -n gnostic "proto/pyroscope/$f"; then echo "gnostic annotations left in $f: update the sed above" >&2; exit 1; fi
  done
  take "$PYRO" "$PYRO_REV" api/LICENSE proto/pyroscope/LICENSE
  { echo "github.com/grafana/pyroscope $PYRO_REV ($(git -C "$PYRO" log -1 --format=%cs "$PYRO_REV")), api/"
    echo "gnostic OpenAPI annotations removed (documentation only, not on the wire): see scripts/proto-refresh.sh"; } > proto/pyroscope/VERSION
fi

OUT=${PROTO_GEN_OUT:-src/proto/gen}
rm -rf "$OUT"
mkdir -p "$OUT"
# Only what the daemon uses is generated; the rest of each file is still vendored
# (the tests' independent decoder compiles the same files with protoc).
protoc -I proto -I /usr/include \
  --plugin=protoc-gen-es="$ROOT/node_modules/.bin/protoc-gen-es" \
  --es_out="$OUT" --es_opt=target=ts,import_extension=js \
  opentelemetry/proto/collector/profiles/v1development/profiles_service.proto \
  opentelemetry/proto/profiles/v1development/profiles.proto \
  opentelemetry/proto/common/v1/common.proto \
  opentelemetry/proto/resource/v1/resource.proto \
  parca/profilestore/v1alpha1/profilestore.proto \
  google/rpc/status.proto google/rpc/error_details.proto \
  google/api/annotations.proto google/api/http.proto \
  -I proto/pyroscope push/v1/push.proto types/v1/types.proto
echo "generated: $(find "$OUT" -name '*.ts' | wc -l) files under $OUT"
