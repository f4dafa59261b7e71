#!/usr/bin/env bash
# The GPU benchmark in one call: bf16 matmul peak, then boot-bench and the PyTorch reference (eager and
# torch.compile) on ImageNet-64 (ADM, Table 3, CFG) and CIFAR-10 (EDM DDPM++), then a short table.
#
# On the device machine, after scripts/cuda/build.sh + pack.sh here (boot-bench packed beside boot-host),
# carrying ["dist", ".whl"] (.whl holds guided_diffusion_sdk-1.0.0-py3-none-any.whl, see bench/README.md):
#   bash scripts/cuda/on-device.sh bash bench/run_all.sh
# Locally (CPU, tiny configs, to check the script):  BENCH_CPU=1 bash bench/run_all.sh
#
# Writes into $OUT (the device tool's folder; default bench/results/run-<time>): peak.json,
# boot-<config>.json, torch-<config>.json (eager and compile), check-cifar10.json, summary.txt, run.log — 8 files
# (the device tool returns at most 8).
# Wall-clock plan (BENCH_BUDGET_S, default 420 s): each stage gets a time budget and a hard timeout, and is
# skipped when too little is left. Env overrides: BENCH_DTYPE (bf16), BENCH_STEPS (20), BENCH_WARMUP (8),
# IMAGENET_BATCH (1024; halved on out-of-memory down to IMAGENET_MIN_BATCH, 16), CIFAR_BATCH (128),
# BOOT_BENCH (the binary), PYTHON (python3), BOOT_CUDNN_EXTRA (other BOOT_CUDNN modes to time boot in as well,
# e.g. "fast": boot-<config>-<mode>.json), BENCH_COMPILE (1: run the torch.compile stages), BENCH_CHECK (1: the
# same-step check).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-bench/results/run-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

TOTAL=${BENCH_BUDGET_S:-420}
DTYPE=${BENCH_DTYPE:-bf16}
STEPS=${BENCH_STEPS:-20}
WARMUP=${BENCH_WARMUP:-8}
PY=${PYTHON:-python3}
DEVICE=cuda:0
CONFIGS=(imagenet64 cifar10)
IMAGENET_BATCH=${IMAGENET_BATCH:-1024}
IMAGENET_MIN=${IMAGENET_MIN_BATCH:-16}
CIFAR_BATCH=${CIFAR_BATCH:-128}
if [ "${BENCH_CPU:-0}" = 1 ]; then
  DEVICE=cpu; DTYPE=${BENCH_DTYPE:-f32}; CONFIGS=(tiny tiny-edm); IMAGENET_BATCH=4; IMAGENET_MIN=2; CIFAR_BATCH=4
  STEPS=${BENCH_STEPS:-4}; WARMUP=${BENCH_WARMUP:-1}
fi
BB=${BOOT_BENCH:-}
candidates=("$(command -v boot-bench 2>/dev/null)" "${BOOT_DIR:-/tmp/boot}/boot-bench" target/cuda/release/boot-bench target/release/boot-bench)
[ "$DEVICE" = cpu ] && candidates=(target/release/boot-bench)
for c in "${candidates[@]}"; do
  [ -z "$BB" ] && [ -n "$c" ] && [ -x "$c" ] && BB=$c
done

left() { echo $((TOTAL - ($(date +%s) - T0))); }
# stage NAME PLAN_S TIMEOUT_S CMD...: runs CMD with a timeout of min(TIMEOUT_S, time left - 5); the
# command's own budget is BUDGET (min(PLAN_S, time left - 20)), read by the caller's arguments.
stage() {
  local name=$1 timeout_s=$2; shift 2
  local l; l=$(left)
  local t=$(( timeout_s < l - 5 ? timeout_s : l - 5 ))
  if [ "$t" -lt 25 ]; then echo "== $name: skipped ($l s left of $TOTAL)"; return 1; fi
  echo "== $name (timeout ${t}s, $l s left) $(date -u +%H:%M:%S)"
  local s0; s0=$(date +%s)
  timeout -k 10 "$t" "$@"
  local rc=$?
  echo "== $name: rc $rc after $(( $(date +%s) - s0 )) s"
  return $rc
}
budget() { local plan=$1 l; l=$(( $(left) - 20 )); echo $(( plan < l ? plan : l )); }
jget() { "$PY" -c "import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception: sys.exit(0)
for k in sys.argv[2].split('.'): d = d.get(k) if isinstance(d, dict) else None
print('' if d is None else d)" "$@"; }

echo "== bench/run_all.sh: $(date -u +%FT%TZ), device $DEVICE, dtype $DTYPE, budget ${TOTAL}s, out $OUT"
echo "== boot-bench: ${BB:-MISSING}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | sed 's/^/== gpu /'
[ -f "${BOOT_DIR:-/tmp/boot}/BUILD-INFO" ] && sed -n '1,4p' "${BOOT_DIR:-/tmp/boot}/BUILD-INFO" | sed 's/^/== build /'
"$PY" -c 'import torch; print("== torch", torch.__version__, "cuda", torch.version.cuda)'

# guided-diffusion (PyPI guided-diffusion-sdk 1.0.0) from the carried wheel; the machine has no network.
if ! "$PY" -c 'import guided_diffusion.unet' 2>/dev/null; then
  whl=$(ls .whl/guided_diffusion_sdk-1.0.0-*.whl 2>/dev/null | head -n1)
  if [ -n "$whl" ]; then
    deps=/tmp/boot-bench-pydeps
    rm -rf "$deps" && "$PY" -m zipfile -e "$whl" "$deps" && export PYTHONPATH=$deps${PYTHONPATH:+:$PYTHONPATH}
    echo "== guided_diffusion from $whl"
  else
    echo "== WARNING: guided_diffusion is not importable and .whl/guided_diffusion_sdk-1.0.0-*.whl is missing: the torch ImageNet runs will fail"
  fi
fi

# 1. The bf16 matmul peak (MFU denominator).
PEAK=
if [ "$DEVICE" != cpu ]; then
  stage peak 90 "$PY" bench/torch/boot_step.py --peak --device "$DEVICE" --out "$OUT/peak.json"
  PEAK=$(jget "$OUT/peak.json" tflops)
fi
PEAK_ARG=(); [ -n "$PEAK" ] && PEAK_ARG=(--peak-tflops "$PEAK")

boot_run() { # config batch min_batch plan timeout
  local c=$1 b=$2 mb=$3 plan=$4 to=$5
  [ -z "$BB" ] && { echo "== boot $c: no boot-bench binary"; return 1; }
  stage "boot $c" "$to" "$BB" --device "$DEVICE" --config "$c" --dtype "$DTYPE" --batch "$b" --min-batch "$mb" \
    --steps "$STEPS" --warmup "$WARMUP" --time-budget "$(budget "$plan")" "${PEAK_ARG[@]}" --out "$OUT/boot-$c.json"
  # bf16 failed before any number was written: f32 with TF32 instead, on what is left of the plan.
  if [ "$DTYPE" = bf16 ] && [ ! -s "$OUT/boot-$c.json" ]; then
    stage "boot $c (f32 + TF32 fallback)" "$to" "$BB" --device "$DEVICE" --config "$c" --dtype f32 --tf32 --batch "$b" \
      --min-batch "$mb" --steps "$STEPS" --warmup "$WARMUP" --time-budget "$(budget $(( plan / 2 )))" "${PEAK_ARG[@]}" \
      --label "bf16 run failed; f32 fallback" --out "$OUT/boot-$c.json"
  fi
}
torch_run() { # config mode batch plan timeout
  local c=$1 m=$2 b=$3 plan=$4 to=$5
  stage "torch $c $m" "$to" "$PY" bench/torch/boot_step.py --config "$c" --device "$DEVICE" --dtype "$DTYPE" --mode "$m" \
    --batch "$b" --min-batch 2 --steps "$STEPS" --warmup "$WARMUP" --time-budget "$(budget "$plan")" "${PEAK_ARG[@]}" \
    --merge --out "$OUT/torch-$c.json"
}
batch_of() { local b; b=$(jget "$OUT/boot-$1.json" batch); echo "${b:-$2}"; }
boot_modes() { # config batch plan timeout: boot again in each BOOT_CUDNN_EXTRA mode, at the batch reached
  local c=$1 b=$2 plan=$3 to=$4 m
  for m in ${BOOT_CUDNN_EXTRA:-}; do
    BOOT_CUDNN=$m stage "boot $c BOOT_CUDNN=$m" "$to" "$BB" --device "$DEVICE" --config "$c" --dtype "$DTYPE" --batch "$b" \
      --steps "$STEPS" --warmup "$WARMUP" --no-infer --time-budget "$(budget "$plan")" "${PEAK_ARG[@]}" \
      --label "BOOT_CUDNN=$m" --out "$OUT/boot-$c-$m.json"
  done
}

IN=${CONFIGS[0]} CI=${CONFIGS[1]}
# 2. ImageNet-64: boot (tries IMAGENET_BATCH, halving on out-of-memory), torch eager at boot's batch.
boot_run "$IN" "$IMAGENET_BATCH" "$IMAGENET_MIN" 100 160
BIN=$(batch_of "$IN" 256)
torch_run "$IN" eager "$BIN" 45 100
boot_modes "$IN" "$BIN" 60 100
# 3. CIFAR-10: boot, torch eager.
boot_run "$CI" "$CIFAR_BATCH" 16 50 100
BCI=$(batch_of "$CI" "$CIFAR_BATCH")
torch_run "$CI" eager "$BCI" 30 80
boot_modes "$CI" "$BCI" 30 60
# 4. torch.compile (compilation dominates its first step): CIFAR-10, then ImageNet-64 with what is left.
if [ "${BENCH_COMPILE:-1}" = 1 ]; then
  torch_run "$CI" compile "$BCI" 60 150
  plan=$(( $(left) - 75 )); [ "$plan" -lt 10 ] && plan=10
  torch_run "$IN" compile "$BIN" "$plan" $(( $(left) - 55 ))
fi
# 5. Same step on the GPU: core's step-0 loss (boot, f32) recomputed by the torch reference on the same
# weights and inputs (CIFAR-10, batch 2; the ImageNet check was run on CPU, see bench/README.md).
dump=/tmp/boot-bench-dump
if [ "${BENCH_CHECK:-1}" = 1 ] && [ -n "$BB" ] && stage "dump $CI" 40 "$BB" --device "$DEVICE" --config "$CI" --dtype f32 --batch 2 --dump "$dump"; then
  stage "check $CI" 40 "$PY" bench/torch/boot_step.py --device "$DEVICE" --check "$dump" --out "$OUT/check-$CI.json"
fi

echo "== done after $(( $(date +%s) - T0 )) s"
"$PY" bench/summarize.py "$OUT"
