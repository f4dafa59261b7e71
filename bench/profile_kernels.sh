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
export BOOT_BENCH_PROFILE=${BOOT_BENCH_PROFILE:-ddim1}
ncu_run() { # name cmd...
  local name=$1; shift
  local s0; s0=$(date +%s)
  timeout -k 10 "${PROFILE_TIMEOUT_S:-240}" "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --csv --page raw \
    --print-units base --clock-control none --cache-control none --log-file "$tmp/$name.csv" "$@" >"$tmp/$name.log" 2>&1
  echo "== profile $name: rc $? after $(( $(date +%s) - s0 )) s"
  tail -n 3 "$tmp/$name.log"
}
ncu_run boot "$BB" --device cuda:0 --config "$CONFIG" --dtype bf16 --batch "$BATCH" --steps 4 --warmup 1 --infer-reps 1 --ddim-steps 2 --out "$tmp/boot.json"
ncu_run torch "$PY" bench/torch/boot_step.py --config "$CONFIG" --device cuda:0 --dtype bf16 --mode eager --batch "$BATCH" \
  --steps 4 --warmup 1 --infer-reps 1 --ddim-steps 2 --out "$tmp/torch.json"
"$PY" bench/kernel_table.py --steps 1 boot="$tmp/boot.csv" torch="$tmp/torch.csv" | tee "$OUT/kernels-$CONFIG.txt"
rm -rf "$tmp"
