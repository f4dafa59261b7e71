#!/usr/bin/env bash
# Packs the CUDA build (scripts/cuda/build.sh) into dist/boot-cuda.tar.xz for the GPU machine, which has no Rust:
#   boot-host (and the workspace's other binaries: boot-bench), libboot_sdk.so, libboot_cuda_compat.so, libstd-*.so (from `rustc --print target-libdir`), the plugin libraries
#   (libboot_plugin_*.so, and the refused test plugins the bad-input tests load), the test
#   executables under deps/ (boot-tests' integration tests find boot-host in the folder above theirs), and
#   BUILD-INFO (commit, dirty files, features, the build's repo path: tests read fixtures from it).
# All stripped of debug info. The stubs of scripts/cuda/setup.sh are never packed: the GPU machine has the
# real libcuda and libcurand. Carry it with the device tool: carry ["dist"], then
# `bash scripts/cuda/on-device.sh CMD...` there.
#
#   bash scripts/cuda/pack.sh                     # from target/cuda/release
#   CARGO_TARGET_DIR=target/cuda-x bash scripts/cuda/pack.sh       # another build folder, as dist/boot-cuda-x.tar.xz
#   BOOT_PACK_TESTS='parity|end_to_end' bash scripts/cuda/pack.sh  # only test executables whose name matches (ERE)
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=${CARGO_TARGET_DIR:-target/cuda}
REL=$TARGET/release
NAME=${BOOT_PACK_NAME:-$(basename "$TARGET" | sed 's/^cuda/boot-cuda/')}
TESTS_RE=${BOOT_PACK_TESTS:-.}
LIMIT_MIB=${BOOT_PACK_LIMIT_MIB:-40}
[ -f "$REL/boot-host" ] && [ -f "$REL/libboot_sdk.so" ] || {
  echo "pack.sh: no CUDA build in $REL: run scripts/cuda/build.sh first" >&2; exit 1; }
readelf -d "$REL/libboot_sdk.so" | grep -q 'libcuda.so.1' || {
  echo "pack.sh: $REL/libboot_sdk.so does not link libcuda.so.1: not a CUDA build" >&2; exit 1; }

stage=dist/.stage/$NAME
rm -rf "$stage"
mkdir -p "$stage/deps"
# The workspace's binaries (boot-host, boot-bench, ...), the sdk and the compat library (build.sh put it there).
for f in "$REL"/*; do
  [ -f "$f" ] && [ -x "$f" ] && [[ "$f" != *.so ]] && file -b "$f" | grep -q '^ELF' && cp "$f" "$stage/"
done
cp "$REL/libboot_sdk.so" "$REL/libboot_cuda_compat.so" "$stage/"
cp "$REL"/libboot_plugin_*.so "$stage/"
cp "$REL"/libboot_testplugin_*.so "$stage/" 2>/dev/null || true
cp "$(rustc --print target-libdir)"/libstd-*.so "$stage/"

# Test executables, from the list `cargo test --no-run` printed (build.sh keeps it), named without the hash.
log=$TARGET/test-executables.log
[ -f "$log" ] || { echo "pack.sh: $log missing: run scripts/cuda/build.sh" >&2; exit 1; }
tests=()
while read -r exe src; do
  base=$(basename "$exe"); short=${base%-*}
  echo "$short" | grep -Eq "$TESTS_RE" || continue
  [ -e "$stage/deps/$short" ] && short=$base # two crates with one test name: keep the hash
  cp "$exe" "$stage/deps/$short"
  tests+=("deps/$short ($src)")
done < <(sed -n 's/^ *Executable \(.*\) (\(.*\))$/\2 \1/p' "$log")

# Strip debug info (release has none of ours; std's and C objects' go). Symbol tables stay: panics keep names.
for f in $(find "$stage" -type f ! -name 'BUILD*'); do
  strip --strip-debug "$f"
done

{
  echo "name: $NAME"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit: $(git rev-parse HEAD) ($(git log -1 --format=%s | cut -c1-72))"
  dirty=$(git status --porcelain --untracked-files=no | wc -l)
  echo "dirty tracked files at pack time: $dirty"
  git status --porcelain --untracked-files=no | sed 's/^/  /'
  echo "cargo features: $(cat "$TARGET/boot-features" 2>/dev/null || echo unknown)"
  echo "build_root: $PWD"
  echo "rustc: $(rustc --version)"
  echo "nvcc: $(eval "$(bash scripts/cuda/setup.sh --env)"; nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "libboot_sdk.so needs: $(readelf -d "$stage/libboot_sdk.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
  echo "test executables:"
  for t in "${tests[@]}"; do echo "  $t"; done
} >"$stage/BUILD-INFO"
echo "$PWD" >"$stage/BUILD_ROOT"

# xz -9: about half of gzip -9's size (the CUDA kernels in libboot_sdk.so are PTX text and cubins); unpacking
# there needs xz or Python's lzma module (on-device.sh uses whichever is present).
archive=dist/$NAME.tar.xz
rm -f "dist/$NAME.tar.gz"
tar -C dist/.stage -cf - "$NAME" | xz -T2 -9 >"$archive.tmp"
mv "$archive.tmp" "$archive"
rm -rf dist/.stage

size=$(stat -c %s "$archive")
echo "pack.sh: $archive: $((size / 1048576)).$(( (size % 1048576) * 10 / 1048576 )) MiB compressed; contents:"
tar -tvJf "$archive" | awk '{printf "  %8.1f MiB  %s\n", $3/1048576, $6}'
if [ "$size" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "pack.sh: $archive is over $LIMIT_MIB MiB: the device tool carries 64 MiB with the working tree" >&2
  exit 1
fi
