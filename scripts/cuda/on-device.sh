#!/usr/bin/env bash
# On the GPU machine (device tool, carry ["dist"]): unpacks the CUDA build to /tmp/boot, sets the library path,
# prints the GPU, checks that every shared library resolves, then runs CMD from the repo root.
#
#   bash scripts/cuda/on-device.sh boot-host --config examples/analytic.toml      # boot-host is on PATH
#   bash scripts/cuda/on-device.sh bash -c 'parity && BOOT__RUN__DEVICE=cuda:0 end_to_end --test-threads 1'
#   bash scripts/cuda/on-device.sh                                                # only unpack and check
#
# Env: BOOT_DIST (archive, default dist/boot-cuda.tar.xz), BOOT_DIR (default /tmp/boot). PATH gets $BOOT_DIR
# (boot-host) and $BOOT_DIR/deps (the test executables, by test name: parity, end_to_end, bad_input, ...).
# Tests that read fixtures by their build-time path (env!("CARGO_MANIFEST_DIR")) find them through a link
# from that path to this checkout, made here when the path does not exist.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
ARCHIVE=${BOOT_DIST:-dist/boot-cuda.tar.xz}
export BOOT_DIR=${BOOT_DIR:-/tmp/boot}

[ -f "$ARCHIVE" ] || { echo "on-device.sh: $ARCHIVE missing: pack it here (scripts/cuda/pack.sh) and carry [\"dist\"]" >&2; exit 1; }
# Unpack once per archive (a warm machine keeps /tmp/boot between calls).
sum=$(cksum <"$ARCHIVE")
if [ "$(cat "$BOOT_DIR/.archive-cksum" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$BOOT_DIR"
  mkdir -p "$BOOT_DIR"
  if command -v xz >/dev/null; then
    tar -xJf "$ARCHIVE" -C "$BOOT_DIR" --strip-components=1
  else # no xz there: Python's lzma
    python3 - "$ARCHIVE" "$BOOT_DIR" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    for m in t.getmembers():
        m.name = m.name.split("/", 1)[1] if "/" in m.name else "."
        t.extract(m, sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
PY
  fi
  echo "$sum" >"$BOOT_DIR/.archive-cksum"
fi

# The CUDA 13.0 libraries of the image first (cuBLAS, cuBLASLt, NVRTC, cuRAND), then ours; cuDNN is in
# /usr/lib/x86_64-linux-gnu and libcuda in /usr/local/nvidia/lib64 (also in the loader's cache).
cuda_lib=/usr/local/cuda-13.0/targets/x86_64-linux/lib
export LD_LIBRARY_PATH=$cuda_lib:$BOOT_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/nvidia/lib64
export PATH=$BOOT_DIR:$BOOT_DIR/deps:$PATH

# Fixture paths compiled into the tests point into the build machine's checkout.
build_root=$(cat "$BOOT_DIR/BUILD_ROOT")
if [ "$build_root" != "$REPO" ] && [ ! -e "$build_root" ]; then
  mkdir -p "$(dirname "$build_root")"
  ln -s "$REPO" "$build_root"
fi

# insta (snapshot tests) looks for the workspace with `cargo metadata` otherwise; there is no cargo here.
export INSTA_WORKSPACE_ROOT=$build_root INSTA_UPDATE=${INSTA_UPDATE:-no}

echo "== build: $(sed -n 's/^commit: \([0-9a-f]\{12\}\).*/\1/p' "$BOOT_DIR/BUILD-INFO"), $(sed -n 's/^dirty tracked files at pack time: //p' "$BOOT_DIR/BUILD-INFO") dirty files, built $(sed -n 's/^built: \([^ ]*\).*/\1/p' "$BOOT_DIR/BUILD-INFO")"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version,compute_cap --format=csv,noheader | sed 's/^/== gpu /'
else
  echo "== on-device.sh: no nvidia-smi here" >&2
fi
missing=$(ldd "$BOOT_DIR/boot-host" "$BOOT_DIR/libboot_sdk.so" 2>&1 | grep 'not found' | sort -u || true)
if [ -n "$missing" ]; then
  echo "on-device.sh: unresolved shared libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
# Every symbol must resolve too (binding is immediate): e.g. a cuBLAS older than the 13.0.2 linked against.
undefined=$(ldd -r "$BOOT_DIR/libboot_sdk.so" 2>&1 | grep 'undefined symbol' || true)
if [ -n "$undefined" ]; then
  echo "on-device.sh: libboot_sdk.so has unresolved symbols with these libraries:" >&2
  echo "$undefined" | head -20 >&2
  exit 1
fi
echo "== libs: $(ldd "$BOOT_DIR/libboot_sdk.so" | grep -E 'libcuda\.|libcublas\.|libcurand|libnvrtc|libcudnn' | awk '{print $3}' | tr '\n' ' ')"
[ $# -eq 0 ] && exit 0
echo "== run: $*"
exec "$@"
