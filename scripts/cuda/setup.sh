#!/usr/bin/env bash
# Installs a CUDA 13.0 tool chain for building `--features cuda` on a machine WITHOUT a GPU or a system CUDA,
# from NVIDIA's PyPI wheels, into a cache folder outside the work tree, and makes a CUDA root from it:
#   $CACHE/py/      the wheels (pip --target); nvcc in py/nvidia/cu13/bin, headers in py/nvidia/cu13/include
#   $CACHE/root/    CUDA root: bin -> wheel bin, nvvm -> wheel nvvm, include -> wheel include,
#                   lib64/ with .so symlinks to the wheels' libraries and gcc-built LINK-TIME STUBS for
#                   libcuda.so (soname libcuda.so.1), libcurand.so (soname libcurand.so.10) and libcudnn.so
#                   (soname libcudnn.so.9; cuDNN 9 is on the GPU machines), one function per
#                   symbol in scripts/cuda/stubs/*.syms. The stubs only satisfy the linker; on the GPU machine
#                   the real driver and cuRAND load by soname. Also libboot_cuda_compat.so (shipped; see
#                   stubs/libboot_cuda_compat.syms).
# Idempotent: a stamp records the pins; a second run with the same pins does nothing but print the env.
#
#   bash scripts/cuda/setup.sh                   # install (once) and print the env
#   eval "$(bash scripts/cuda/setup.sh --env)"   # quiet: only the export lines, for sourcing
#
# Why 13.0.x: the GPU machines run driver 580 (CUDA 13.0); a newer nvcc writes PTX that driver may refuse
# (shared/gpu.md). CUDA_COMPUTE_CAP=90: H100/H200 (sm_90).
set -euo pipefail

CACHE=${BOOT_CUDA_CACHE:-$HOME/.cache/boot-cuda}
PINS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
)
ENV_ONLY=0
for a in "$@"; do
  case "$a" in
    --env) ENV_ONLY=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
say() { [ "$ENV_ONLY" = 1 ] || echo "setup.sh: $*" >&2; }

PY=$CACHE/py
ROOT=$CACHE/root
CU=$PY/nvidia/cu13
STUB_SRC=$(cd "$(dirname "$0")" && pwd)/stubs
mkdir -p "$CACHE"

# 1. Wheels. The stamp holds the pin list; a different list reinstalls into a fresh folder.
want=$(printf '%s\n' "${PINS[@]}")
if [ "$(cat "$PY/.boot-pins" 2>/dev/null)" != "$want" ]; then
  say "installing ${#PINS[@]} CUDA 13.0 wheels into $PY (cuBLAS alone is ~570 MB; a few minutes)"
  rm -rf "$PY.partial"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --no-deps --only-binary=:all: --target "$PY.partial" "${PINS[@]}" >&2
  rm -rf "$PY"
  mv "$PY.partial" "$PY"
  echo "$want" >"$PY/.boot-pins"
else
  say "wheels already installed in $PY"
fi
[ -x "$CU/bin/nvcc" ] || { echo "setup.sh: no nvcc at $CU/bin/nvcc after install" >&2; exit 1; }

# 2. The CUDA root. Rebuilt when missing or older than this script or the stub lists (cheap: symlinks + 3 gcc calls).
stamp=$ROOT/.boot-root
if [ ! -f "$stamp" ] || [ "$0" -nt "$stamp" ] || [ -n "$(find "$STUB_SRC" -newer "$stamp" -print -quit)" ] \
   || [ "$(cat "$stamp")" != "$ROOT" ]; then
  say "making CUDA root $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$ROOT/lib64"
  ln -s "$CU/include" "$ROOT/include"
  ln -s "$CU/bin" "$ROOT/bin"
  [ -d "$CU/nvvm" ] && ln -s "$CU/nvvm" "$ROOT/nvvm"
  # Real libraries from the wheels, under the unversioned names the linker looks for.
  for lib in cublas cublasLt nvrtc cudart; do
    real=$(ls "$CU"/lib/lib$lib.so.13* 2>/dev/null | head -n1)
    [ -n "$real" ] || { echo "setup.sh: lib$lib.so.13 not found in $CU/lib" >&2; exit 1; }
    ln -s "$real" "$ROOT/lib64/lib$lib.so"
    ln -s "$real" "$ROOT/lib64/$(basename "$real")"
  done
  # Link-time stubs: one empty function per symbol the link asks for (lists in scripts/cuda/stubs/*.syms).
  # Every stub function returns the library's "no device / not initialised" status, so that a cuda build run
  # HERE with LD_LIBRARY_PATH=$ROOT/lib64 behaves like a machine with a driver and no GPU (cuInit -> 100,
  # CUDA_ERROR_NO_DEVICE): that is how the refusal path is tested without a GPU. Never ship the stubs.
  stub() { # file soname symbol-list status
    local c=$ROOT/lib64/$1.c
    { echo "/* made by scripts/cuda/setup.sh from scripts/cuda/stubs/$3 */"
      awk -v r="$4" '!/^#/ && NF {
        if ($1 == "cudnnGetErrorString")
          printf "const char *%s(int e) { return \"stub libcudnn\"; }\n", $1
        else if ($1 == "cuGetErrorString" || $1 == "cuGetErrorName")
          printf "int %s(int e, const char **s) { *s = e == 100 ? \"no CUDA-capable device is detected (link-time stub libcuda)\" : \"stub libcuda\"; return 0; }\n", $1
        else
          printf "int %s(void) { return %s; }\n", $1, r }' "$STUB_SRC/$3"; } >"$c"
    gcc -shared -fPIC -O1 -o "$ROOT/lib64/$1" -Wl,-soname,"$2" "$c"
    rm -f "$c"
  }
  stub libcuda.so libcuda.so.1 libcuda.syms 100                  # CUDA_ERROR_NO_DEVICE
  ln -s libcuda.so "$ROOT/lib64/libcuda.so.1"
  stub libcurand.so libcurand.so.10 libcurand.syms 203           # CURAND_STATUS_INITIALIZATION_FAILED
  ln -s libcurand.so "$ROOT/lib64/libcurand.so.10"
  stub libcudnn.so libcudnn.so.9 libcudnn.syms 1001             # CUDNN_STATUS_NOT_INITIALIZED
  ln -s libcudnn.so "$ROOT/lib64/libcudnn.so.9"
  # Not a stub: shipped with the build (scripts/cuda/stubs/libboot_cuda_compat.syms says why).
  stub libboot_cuda_compat.so libboot_cuda_compat.so libboot_cuda_compat.syms 15  # CUBLAS_STATUS_NOT_SUPPORTED
  echo "$ROOT" >"$stamp"
else
  say "CUDA root $ROOT is up to date"
fi

# 3. The env to source.
env_lines=$(cat <<EOF
export CUDA_ROOT=$ROOT
export CUDA_PATH=$ROOT
export CUDA_TOOLKIT_ROOT_DIR=$ROOT
export PATH=$ROOT/bin:\$PATH
export CUDA_COMPUTE_CAP=90
export LIBRARY_PATH=$ROOT/lib64\${LIBRARY_PATH:+:\$LIBRARY_PATH}
EOF
)
if [ "$ENV_ONLY" = 1 ]; then
  echo "$env_lines"
else
  say "$("$CU/bin/nvcc" --version | tail -n2 | head -n1)"
  say "source this env (or: eval \"\$(bash scripts/cuda/setup.sh --env)\"):"
  echo "$env_lines"
fi
