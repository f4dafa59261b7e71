#!/usr/bin/env bash
# boot-host against boot-bench on the same config in the same device call: by default the paper's ImageNet-64
# run (examples/imagenet64.toml) in bf16 (run.dtype), on the random-weight checkpoint boot-bench writes.
#
#   bash scripts/cuda/on-device.sh bash bench/host_vs_bench.sh          # alone (about 3 min on an H200)
#   (bench/gpu_session.sh runs it too)
#
# 1. boot-bench --dump writes the random checkpoint of the Table 3 ADM (and step 0's inputs and loss);
# 2. boot-host trains on it for HOST_STEPS steps (bf16, batch HOST_BATCH, metrics every 4 steps, no grids,
#    no evaluation, one checkpoint at the end);
# 3. boot-bench times the same step (same config, dtype and batch);
# 4. $OUT/host-vs-bench.json: boot-host's steps/s from metrics.jsonl's `seconds` over the steps after the
#    first HOST_SKIP (compilation, cuDNN's algorithm search and the memory pool's growth happen there, as in
#    boot-bench's warm-up), boot-bench's steps/s (median of its timed windows), their ratio, and the raw lines.
# Env: OUT (default bench/results/host-vs-bench-<time>), HOST_STEPS (24), HOST_BATCH (128), HOST_SKIP (8),
# BOOT_DIR (/tmp/boot: the unpacked CUDA build), DEVICE (cuda:0), HOST_DTYPE (bf16), HOST_CONFIG (imagenet64;
# a boot-bench --config name). A CPU check of the script here:
#   BOOT_DIR=target/release DEVICE=cpu HOST_DTYPE=f32 HOST_CONFIG=tiny HOST_BATCH=2 HOST_STEPS=8 HOST_SKIP=4 bash bench/host_vs_bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/host-vs-bench-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
BIN=${BOOT_DIR:-/tmp/boot}
DEVICE=${DEVICE:-cuda:0}
STEPS=${HOST_STEPS:-24}
BATCH=${HOST_BATCH:-128}
SKIP=${HOST_SKIP:-8}
DTYPE=${HOST_DTYPE:-bf16}
CONFIG=${HOST_CONFIG:-imagenet64}
case $CONFIG in
  imagenet64) EXAMPLE=examples/imagenet64.toml ;;
  cifar10) EXAMPLE=examples/edm-cifar10.toml ;;
  tiny) EXAMPLE=examples/imagenet-tiny.toml ;;
  tiny-edm) EXAMPLE=examples/edm-tiny.toml ;;
  *) echo "unknown HOST_CONFIG $CONFIG"; exit 2 ;;
esac
WORK=$(mktemp -d /tmp/host-vs-bench.XXXXXX)
NETWORK=()
case $CONFIG in cifar10|tiny-edm) NETWORK=("BOOT__TEACHER__NETWORK=$WORK/ck/teacher.json") ;; esac

echo "== boot-bench --dump (random $CONFIG checkpoint) $(date -u +%H:%M:%S)"
timeout 300 "$BIN/boot-bench" --config "$CONFIG" --device "$DEVICE" --dtype "$DTYPE" --batch "$BATCH" --dump "$WORK/ck" 2>&1 | grep -E "wrote|rror"

echo "== boot-host $EXAMPLE, run.dtype = $DTYPE, $STEPS steps at batch $BATCH $(date -u +%H:%M:%S)"
env "${NETWORK[@]}" BOOT__RUN__DTYPE=$DTYPE BOOT__RUN__DEVICE=$DEVICE BOOT__RUN__OUT_DIR=$WORK/run \
  BOOT__TEACHER__CHECKPOINT=$WORK/ck/teacher.safetensors \
  BOOT__TRAIN__STEPS=$STEPS BOOT__TRAIN__BATCH_SIZE=$BATCH BOOT__TRAIN__LOG_EVERY=4 BOOT__TRAIN__PROGRESS_EVERY=4 \
  BOOT__TRAIN__CHECKPOINT_EVERY=0 BOOT__TRAIN__GRID_EVERY=0 BOOT__TRAIN__GRID_SAMPLES=4 BOOT__EVAL__AFTER_TRAINING=false \
  timeout 600 "$BIN/boot-host" --config "$EXAMPLE" 2>&1 | grep -E "progress|finished|rror|WARN"
host_rc=${PIPESTATUS[0]}
echo "== boot-host: rc $host_rc"

echo "== boot-bench, same config, dtype and batch $(date -u +%H:%M:%S)"
timeout 400 "$BIN/boot-bench" --config "$CONFIG" --device "$DEVICE" --dtype "$DTYPE" --batch "$BATCH" --steps $((STEPS - SKIP)) --warmup "$SKIP" \
  --no-infer --out "$WORK/bench.json" 2>&1 | grep -E "s/step|rror"

python3 - "$WORK" "$OUT/host-vs-bench.json" "$SKIP" "$BATCH" "$host_rc" "$EXAMPLE" "$DTYPE" <<'PY'
import json, sys, pathlib
work, out, skip, batch, host_rc = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = {"config": sys.argv[6], "dtype": sys.argv[7], "batch": batch, "host_rc": host_rc}
try:
    lines = [json.loads(l) for l in (work / "run" / "metrics.jsonl").read_text().splitlines() if l.strip()]
    r["host_metrics"] = lines
    a = next(l for l in lines if l["step"] >= skip)
    b = lines[-1]
    r["host_steps_per_s"] = (b["step"] - a["step"]) / (b["seconds"] - a["seconds"])
    r["host_window"] = [a["step"], b["step"]]
except Exception as e:
    r["host_error"] = repr(e)
try:
    bench = json.loads((work / "bench.json").read_text())
    r["bench_steps_per_s"] = bench["train"]["steps_per_s"]
    r["bench_batch"] = bench["batch"]
    r["bench_window_step_s"] = bench["train"]["window_step_s"]
    r["bench_phases_mean_s"] = bench["train"]["phases_mean_s"]
    r["bench_device"] = bench["device"]
except Exception as e:
    r["bench_error"] = repr(e)
if "host_steps_per_s" in r and "bench_steps_per_s" in r:
    r["host_over_bench"] = r["host_steps_per_s"] / r["bench_steps_per_s"]
    print(f"boot-host {r['host_steps_per_s']:.3f} steps/s, boot-bench {r['bench_steps_per_s']:.3f} steps/s: ratio {r['host_over_bench']:.3f}")
pathlib.Path(out).write_text(json.dumps(r, indent=1) + "\n")
print("wrote", out)
PY
rm -rf "$WORK"
