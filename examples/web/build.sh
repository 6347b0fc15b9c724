#!/usr/bin/env bash
# Builds the example page: the crate to wasm (release), then the wasm-bindgen `--target web`
# glue into examples/web/pkg/, and prints the size of the .wasm (raw and gzip -9).
#
#   examples/web/build.sh               # with the `arrow` feature (results streamed as Arrow)
#   examples/web/build.sh --no-arrow    # without it (results rendered from JSON rows)
#   examples/web/build.sh --codecs=none|lz4|zstd   # Arrow with no IPC codec, or one
#                                       # (the default `arrow` has both; zstd needs clang)
#   examples/web/build.sh --small       # also: opt-level s, fat LTO, 1 codegen unit, no
#                                       # name section (a size-tuned release; slower to build)
#   examples/web/build.sh --dev         # a debug build (what tests/run uses: it shares the
#                                       # debug wasm dependencies the browser tests build)
set -euo pipefail
cd "$(dirname "$0")/../.."

FEATURES=()
LABEL="arrow"
SMALL=""
PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --no-arrow) FEATURES=(--no-default-features); LABEL="no arrow" ;;
    --codecs=*) CODEC=${arg#--codecs=}
      case "$CODEC" in
        none) FEATURES=(--no-default-features --features arrow-minimal) ;;
        lz4|zstd) FEATURES=(--no-default-features --features "arrow-$CODEC") ;;
        *) echo "--codecs=none|lz4|zstd" >&2; exit 2 ;;
      esac
      LABEL="arrow, codecs: $CODEC" ;;
    --small) SMALL=1 ;;
    --dev) PROFILE=debug ;;
    *) echo "usage: $0 [--no-arrow | --codecs=none|lz4|zstd] [--small] [--dev]" >&2; exit 2 ;;
  esac
done
[ "$PROFILE" = release ] || LABEL="$LABEL, debug"
BINDGEN=()
if [ -n "$SMALL" ]; then
  LABEL="$LABEL, small"
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  BINDGEN=(--remove-name-section --remove-producers-section)
fi

command -v wasm-bindgen >/dev/null || { echo "wasm-bindgen (wasm-bindgen-cli) is not on PATH" >&2; exit 1; }
T0=$(date +%s)
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
cargo build "${PROFILE_FLAG[@]}" --locked --target wasm32-unknown-unknown -p hotdata-web-example --lib "${FEATURES[@]}"
WASM=${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$PROFILE/hotdata_web_example.wasm
rm -rf examples/web/pkg
wasm-bindgen --target web --no-typescript "${BINDGEN[@]}" --out-dir examples/web/pkg "$WASM"
OUT=examples/web/pkg/hotdata_web_example_bg.wasm
RAW=$(wc -c <"$OUT")
GZ=$(gzip -9 -c "$OUT" | wc -c)
echo "built examples/web/pkg ($LABEL) in $(( $(date +%s) - T0 )) s"
echo "$OUT: $RAW bytes ($(( (RAW + 512) / 1024 )) KiB) raw, $GZ bytes ($(( (GZ + 512) / 1024 )) KiB) gzip -9"
