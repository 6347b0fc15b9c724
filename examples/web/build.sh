#!/usr/bin/env bash
# Builds the example page: the crate to wasm (release), then the wasm-bindgen `--target web`
# glue into examples/web/pkg/, and prints the size of the .wasm (raw and gzip -9).
#
#   examples/web/build.sh               # with the `arrow` feature (results streamed as Arrow)
#   examples/web/build.sh --no-arrow    # without it (results rendered from JSON rows)
#   examples/web/build.sh --codecs=none|lz4|zstd   # Arrow with no IPC codec, or one
#                                       # (the default `arrow` has both; zstd needs clang)
#   examples/web/build.sh --small       # also: opt-level z, fat LTO, 1 codegen unit, no
#                                       # name section, then binaryen's `wasm-opt -Oz` (a
#                                       # size-tuned release; slower to build). wasm-opt is
#                                       # the version pinned in examples/web/package.json,
#                                       # installed with npm when missing
#   examples/web/build.sh --small --no-wasm-opt    # the same without the wasm-opt step
#   examples/web/build.sh --dev         # a debug build (what tests/run uses: it shares the
#                                       # debug wasm dependencies the browser tests build)
set -euo pipefail
cd "$(dirname "$0")/../.."

FEATURES=()
LABEL="arrow"
SMALL=""
WASM_OPT=1
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
    --no-wasm-opt) WASM_OPT="" ;;
    --dev) PROFILE=debug ;;
    *) echo "usage: $0 [--no-arrow | --codecs=none|lz4|zstd] [--small [--no-wasm-opt]] [--dev]" >&2; exit 2 ;;
  esac
done
[ "$PROFILE" = release ] || LABEL="$LABEL, debug"
BINDGEN=()
if [ -n "$SMALL" ]; then
  LABEL="$LABEL, small"
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  BINDGEN=(--remove-name-section --remove-producers-section)
  # Binaryen from npm (a wasm build run by Node), pinned: Debian's binaryen 108 writes the
  # externref table's export against the wrong table and the page fails to start.
  if [ -n "$WASM_OPT" ] && [ ! -x examples/web/node_modules/.bin/wasm-opt ] && command -v npm >/dev/null; then
    echo "== installing binaryen (npm ci --prefix examples/web)"
    npm ci --prefix examples/web --no-audit --no-fund --loglevel=error
  fi
  if [ -n "$WASM_OPT" ] && [ ! -x examples/web/node_modules/.bin/wasm-opt ]; then
    echo "warning: no wasm-opt (npm ci --prefix examples/web): the .wasm is left as wasm-bindgen wrote it" >&2
    WASM_OPT=""
  fi
  [ -n "$WASM_OPT" ] || LABEL="$LABEL, no wasm-opt"
else
  WASM_OPT=""
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
if [ -n "$WASM_OPT" ]; then
  # The features rustc 1.95 enables for wasm32-unknown-unknown. Single-caller functions are
  # inlined only up to 20 bytes: binaryen's default (any size) makes the file smaller but
  # its gzip larger (BENCHMARKS.md).
  WO=examples/web/node_modules/.bin/wasm-opt
  "$WO" -Oz --one-caller-inline-max-function-size=20 \
    --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-reference-types --enable-multivalue "$OUT" -o "$OUT"
  LABEL="$LABEL, $("$WO" --version | sed 's/ (.*//')"
fi
RAW=$(wc -c <"$OUT")
GZ=$(gzip -9 -c "$OUT" | wc -c)
echo "built examples/web/pkg ($LABEL) in $(( $(date +%s) - T0 )) s"
echo "$OUT: $RAW bytes ($(( (RAW + 512) / 1024 )) KiB) raw, $GZ bytes ($(( (GZ + 512) / 1024 )) KiB) gzip -9"
