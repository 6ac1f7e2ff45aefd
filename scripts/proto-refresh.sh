#!/bin/sh
# Refreshes the vendored .proto files under proto/ from checkouts of their
# repositories, then regenerates the TypeScript under src/proto/gen/ with
# protoc-gen-es (a dev dependency). The generated code is committed, so
# neither a build nor a user of the daemon needs protoc.
#
#   scripts/proto-refresh.sh OTEL_PROTO_DIR PARCA_DIR GOOGLEAPIS_DIR
#     OTEL_PROTO_DIR  a checkout of github.com/open-telemetry/opentelemetry-proto
#                     at the tag below (OTEL_TAG)
#     PARCA_DIR       a checkout of github.com/parca-dev/parca
#     GOOGLEAPIS_DIR  a checkout of github.com/googleapis/googleapis
#   scripts/proto-refresh.sh --generate   only regenerate from proto/ as it is
#
# Needs protoc (Debian: protobuf-compiler, with libprotobuf-dev for the
# google/protobuf imports). Each folder keeps its project's LICENSE and a
# VERSION file saying what it was taken from.
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
  [ $# -eq 3 ] || { sed -n 2,18p "$0"; exit 2; }
  OTEL=$1 PARCA=$2 GAPI=$3
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
fi

rm -rf src/proto/gen
mkdir -p src/proto/gen
# Only what the daemon uses is generated; the rest of each file is still vendored
# (the tests' independent decoder compiles the same files with protoc).
protoc -I proto -I /usr/include \
  --plugin=protoc-gen-es="$ROOT/node_modules/.bin/protoc-gen-es" \
  --es_out=src/proto/gen --es_opt=target=ts,import_extension=js \
  opentelemetry/proto/collector/profiles/v1development/profiles_service.proto \
  opentelemetry/proto/profiles/v1development/profiles.proto \
  opentelemetry/proto/common/v1/common.proto \
  opentelemetry/proto/resource/v1/resource.proto \
  parca/profilestore/v1alpha1/profilestore.proto \
  google/rpc/status.proto google/rpc/error_details.proto \
  google/api/annotations.proto google/api/http.proto
echo "generated: $(find src/proto/gen -name '*.ts' | wc -l) files under src/proto/gen"
