#!/usr/bin/env bash
# Per-kernel GPU time of one DDIM step (one guided teacher evaluation: the forward pass) of boot-bench and of
# the PyTorch eager reference, with Nsight Compute (ncu; /usr/local/cuda/bin on the GPU machines). Both
# programs bracket that step with cuProfilerStart/Stop (BOOT_BENCH_PROFILE=ddim1), so only its kernels are
# recorded; clocks and caches are left alone (--clock-control none --cache-control none) so durations are
# those of a normal run, but kernels run one at a time. (BOOT_BENCH_PROFILE=1 brackets a 4-step training
# window instead: too many kernels for ncu's per-kernel cost within a device call.)
#
#   OUT=/tmp/p bash scripts/cuda/on-device.sh bash bench/profile_kernels.sh imagenet64 64
#
# Writes $OUT/kernels-<config>.txt (bench/kernel_table.py: top kernels and categories for boot and torch).
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-cifar10}
BATCH=${2:-128}
OUT=${OUT:-bench/results/profile-$(date -u +%Y%m%d-%H%M%S)}
PY=${PYTHON:-python3}
NCU=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
BB=${BOOT_BENCH:-${BOOT_DIR:-/tmp/boot}/boot-bench}
mkdir -p "$OUT"
tmp=$(mktemp -d)
# guided-diffusion for the torch ImageNet reference, from the carried wheel (as bench/run_all.sh).
if ! "$PY" -c 'import guided_diffusion.unet' 2>/dev/null; then
  whl=$(ls .whl/guided_diffusion_sdk-1.0.0-*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] && "$PY" -m zipfile -e "$whl" "$tmp/pydeps" && export PYTHONPATH=$tmp/pydeps${PYTHONPATH:+:$PYTHONPATH}
fi
export BOOT_BENCH_PROFILE=${BOOT_BENCH_PROFILE:-ddim1}
ncu_run() { # name cmd...
  local name=$1; shift
  local s0; s0=$(date +%s)
  timeout -k 10 "${PROFILE_TIMEOUT_S:-240}" "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --csv --page raw \
    --print-units base --clock-control none --cache-control none --log-file "$tmp/$name.csv" "$@" >"$tmp/$name.log" 2>&1
  echo "== profile $name: rc $? after $(( $(date +%s) - s0 )) s"
  tail -n 3 "$tmp/$name.log"
  grep -q '^"' "$tmp/$name.csv" 2>/dev/null || { echo "== $name: no kernel rows; ncu said:"; head -n 15 "$tmp/$name.csv" "$tmp/$name.log" 2>/dev/null; }
}
ncu_run boot "$BB" --device cuda:0 --config "$CONFIG" --dtype bf16 --batch "$BATCH" --steps 4 --warmup 1 --infer-reps 1 --ddim-steps 2 --out "$tmp/boot.json"
ncu_run torch "$PY" bench/torch/boot_step.py --config "$CONFIG" --device cuda:0 --dtype bf16 --mode eager --batch "$BATCH" \
  --steps 4 --warmup 1 --infer-reps 1 --ddim-steps 2 --out "$tmp/torch.json"
"$PY" bench/kernel_table.py --steps 1 boot="$tmp/boot.csv" torch="$tmp/torch.csv" | tee "$OUT/kernels-$CONFIG.txt"
xz -c "$tmp/boot.csv" >"$OUT/ncu-boot-$CONFIG.csv.xz" 2>/dev/null; xz -c "$tmp/torch.csv" >"$OUT/ncu-torch-$CONFIG.csv.xz" 2>/dev/null
rm -rf "$tmp"
