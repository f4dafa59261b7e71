#!/usr/bin/env bash
# Regenerates scripts/cuda/stubs/*.syms from a built libboot_sdk.so: the symbols it leaves undefined that none
# of its real libraries (the wheels' cuBLAS/cuBLASLt/NVRTC/cudart, libstd, libc, ...) define. Those are what
# the link of boot-host asks of libcuda.so.1 (cu[A-Z]*), libcurand.so.10 (curand*) and of the compat library
# (cublas*: declared by cudarc's CUDA 13.0 bindings, missing from the 13.0.2.14 cuBLASLt).
# Run it after a candle/cudarc upgrade: build.sh builds libboot_sdk.so (a shared library links with undefined
# symbols) and then fails linking boot-host; this fills the lists; setup.sh and build.sh then pass.
#
#   bash scripts/cuda/stub-symbols.sh [path/to/libboot_sdk.so]   # default target/cuda/release/deps/libboot_sdk.so
set -euo pipefail
cd "$(dirname "$0")/../.."
SDK=${1:-${CARGO_TARGET_DIR:-target/cuda}/release/deps/libboot_sdk.so}
eval "$(bash scripts/cuda/setup.sh --env)"
stubs=scripts/cuda/stubs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --undefined-only "$SDK" | awk '$1 == "U" {sub(/@.*/, "", $2); print $2}' | sort -u >"$tmp/undef"
dirs=("$(rustc --print target-libdir)" /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu "$(dirname "$(gcc -print-file-name=libstdc++.so.6)")")
: >"$tmp/defined"
for lib in $(readelf -d "$SDK" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
  case "$lib" in libcuda.so*|libcurand.so*|libcudnn.so*|libboot_cuda_compat.so*) continue ;; esac
  f=
  for d in "$CUDA_ROOT/lib64" "${dirs[@]}"; do [ -e "$d/$lib" ] && { f=$d/$lib; break; }; done
  [ -n "$f" ] || { echo "stub-symbols.sh: $lib (needed by $SDK) not found" >&2; exit 1; }
  nm -D --defined-only "$(readlink -f "$f")" | awk '{sub(/@.*/, "", $3); print $3}' >>"$tmp/defined"
done
sort -u -o "$tmp/defined" "$tmp/defined"
comm -23 "$tmp/undef" "$tmp/defined" >"$tmp/missing"

header() {
  echo "# Symbols libboot_sdk.so (--features cuda) asks of $1: 'nm -D --undefined-only' minus what its"
  echo "# other libraries define. Regenerate after a candle/cudarc upgrade: bash scripts/cuda/stub-symbols.sh"
}
{ header "libcuda.so.1 (driver API)"; grep '^cu[A-Z]' "$tmp/missing" || true; } >"$stubs/libcuda.syms"
{ header "libcurand.so.10"; grep '^curand' "$tmp/missing" || true; } >"$stubs/libcurand.syms"
{ header "libcudnn.so.9"; grep '^cudnn' "$tmp/missing" || true; } >"$stubs/libcudnn.syms"
{ sed -n '/^#/p' "$stubs/libboot_cuda_compat.syms"; grep '^cublas' "$tmp/missing" || true; } >"$tmp/compat"
mv "$tmp/compat" "$stubs/libboot_cuda_compat.syms"
other=$(grep -v -E '^(cu[A-Z]|curand|cudnn|cublas)' "$tmp/missing" || true)
wc -l "$stubs"/*.syms
if [ -n "$other" ]; then
  echo "stub-symbols.sh: undefined symbols no list covers (a new library to stub?):" >&2
  echo "$other" >&2
  exit 1
fi
