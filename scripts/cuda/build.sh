#!/usr/bin/env bash
# Builds the workspace with CUDA (candle's `cuda` feature) into target/cuda, on a machine without a GPU:
# boot-host, libboot_sdk.so, the plugins, and the test executables (not run here: they need the GPU machine).
#
#   bash scripts/cuda/build.sh      # into target/cuda/release; prints the times and the test executables
#
# Never touches target/release (the CPU build). Env: CARGO_TARGET_DIR overrides the target folder,
# BOOT_CUDA_CACHE the tool-chain cache (scripts/cuda/setup.sh), CARGO_BUILD_JOBS the parallelism.
# Every link also gets libboot_cuda_compat.so (scripts/cuda/stubs/libboot_cuda_compat.syms says why); only
# libboot_sdk.so keeps it (--as-needed), and it is copied next to boot-host.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/cuda

for a in "$@"; do
  case "$a" in
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

eval "$(bash $here/setup.sh --env)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
FEATURES=
case "$CARGO_TARGET_DIR" in
  target/release|target|./target|"$PWD/target") echo "build.sh: refusing CARGO_TARGET_DIR=$CARGO_TARGET_DIR (the CPU build's)" >&2; exit 2 ;;
esac
# Every member with a `cuda` feature gets it (boot-core's own cfg decides whether `cuda:N` is accepted).
for m in $(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if "cuda" in p["features"]: print(p["name"])'); do
  FEATURES=${FEATURES:+$FEATURES,}$m/cuda
done
# cuDNN convolutions (boot_sdk::ops): on unless BOOT_CUDNN_BUILD=0 (then candle's own CUDA convolutions).
[ "${BOOT_CUDNN_BUILD:-1}" = 0 ] || FEATURES=$FEATURES,boot-sdk/cudnn
echo "build.sh: features $FEATURES -> $CARGO_TARGET_DIR/release"

# The run-time kernels compile with NVRTC (no headers) first: a source nvcc accepts can still fail there.
python3 scripts/cuda/check-kernels.py >&2
mkdir -p "$CARGO_TARGET_DIR"
echo "$FEATURES" >"$CARGO_TARGET_DIR/boot-features"
t0=$(date +%s)
# Appended to .cargo/config.toml's build.rustflags (cargo joins config arrays), not replacing them.
compat=(--config "build.rustflags=[\"-C\", \"link-arg=-L$CUDA_ROOT/lib64\", \"-C\", \"link-arg=-lboot_cuda_compat\"]")
cargo "${compat[@]}" build --release --workspace --features "$FEATURES"
cp "$CUDA_ROOT/lib64/libboot_cuda_compat.so" "$CARGO_TARGET_DIR/release/"
t1=$(date +%s)
cargo "${compat[@]}" test --release --workspace --features "$FEATURES" --no-run 2>&1 | tee "$CARGO_TARGET_DIR/test-executables.log" >&2
t2=$(date +%s)

rel=$CARGO_TARGET_DIR/release
echo "build.sh: build $((t1 - t0)) s, test executables $((t2 - t1)) s"
echo "build.sh: libboot_sdk.so needs: $(readelf -d "$rel/libboot_sdk.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
echo "build.sh: test executables:"
sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$CARGO_TARGET_DIR/test-executables.log" | sed 's/^/  /'
