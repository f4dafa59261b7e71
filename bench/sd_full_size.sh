#!/usr/bin/env bash
# BOOT on Stable Diffusion 2.1-base at full size, random weights: boot-host's own training
# (examples/sd21-base.toml) and the PyTorch/diffusers reference of the same step (bench/torch/boot_step.py
# --config sd21-base) on one GPU, at the same batch, in one device call; every number from the programs.
#
#   bash bench/sd_full_size.sh                   # phases folder boot torch (about 5 min on an H200)
#   bash bench/sd_full_size.sh compile           # the reference under torch.compile (minutes; a warm machine
#                                                # keeps the folder, else add `folder` first)
#   device call: carry [".whl", "dist"] (diffusers' wheel, the packed CUDA build); command:
#   bash scripts/cuda/on-device.sh bash bench/sd_full_size.sh
#
# Phases (default: folder boot torch; `summary` always runs last):
#   folder   bench/torch/sd_folder.py writes the random-weight SD 2.1-base pipeline folder to $SD (bf16 weights,
#            the Hub's configs, the real CLIP BPE from $TOKENIZER) -> sd_folder.json, sd_folder.log
#   boot     $BOOT_DIR/boot-host --config $WORK/sd.toml (the example with teacher.path and prompts absolute):
#            STEPS steps at batch BATCH, metrics every 4 steps, a progress line every 10, no grid before the
#            end (grid_every = 0 means "only at the end"; 4 samples there), no evaluation; one checkpoint at
#            the end (core always writes one there); nvidia-smi's memory.used polled every 100 ms
#            -> boot-host.log, boot-metrics.jsonl
#   torch    boot_step.py --config sd21-base --sd-folder $SD, eager, same batch (halved on out-of-memory),
#            TORCH_STEPS timed steps after TORCH_WARMUP, inference (one-step student, teacher DDIM-50)
#            -> torch.json, torch.log
#   compile  the same under torch.compile (--merge into torch.json; COMPILE_TIMEOUT s at most) -> torch.log
#   summary  summary.json: steps/s, samples/s and peak memory of both, boot over torch
# Steady steps/s: boot from metrics.jsonl's `seconds` after the first BOOT_SKIP steps (the first steps hold
# cuDNN's algorithm search and the memory pool's growth), torch the median of its timed 4-step windows.
#
# Env: OUT (results, default bench/results/sd-<time>), BOOT_DIR (/tmp/boot: the unpacked CUDA build), WORK
# (/tmp/boot-sd: config, run folder, memory traces), SD (/tmp/sd21-base-random), TOKENIZER
# (models/tests/fixtures/transformers/clip_tokenizer/sd2), BATCH (8), STEPS (40), BOOT_SKIP (8), DEVICE (cuda:0),
# DTYPE (bf16), TORCH_STEPS (20), TORCH_WARMUP (6), TORCH_BUDGET (150 s), TORCH_DDIM (50), COMPILE_BUDGET (360 s), COMPILE_TIMEOUT (420),
# BOOT_TIMEOUT (420), TORCH_TIMEOUT (300), PYTHON (python3).
# Wheels in .whl/ (diffusers) are installed into /tmp/site first. A CPU check of the plumbing, here:
#   TINY=1 DEVICE=cpu DTYPE=f32 BATCH=2 STEPS=8 BOOT_SKIP=4 TORCH_STEPS=2 TORCH_WARMUP=1 TORCH_DDIM=2 BOOT_DIR=target/release \
#     TOKENIZER=/tmp/clip-tok SD=/tmp/sd-tiny-folder PYTHON=/work/venvs/fixtures/bin/python bash bench/sd_full_size.sh
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-bench/results/sd-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=${BOOT_DIR:-/tmp/boot}
WORK=${WORK:-/tmp/boot-sd}
mkdir -p "$WORK"
SD=${SD:-/tmp/sd21-base-random}
TOKENIZER=${TOKENIZER:-models/tests/fixtures/transformers/clip_tokenizer/sd2}
BATCH=${BATCH:-8}
STEPS=${STEPS:-40}
BOOT_SKIP=${BOOT_SKIP:-8}
DEVICE=${DEVICE:-cuda:0}
DTYPE=${DTYPE:-bf16}
PY=${PYTHON:-python3}
TINY=${TINY:-0}
GPU=${DEVICE#cuda:}
[ "$GPU" = "$DEVICE" ] && GPU=
export PYTHONUNBUFFERED=1

say() { echo "== $* $(date -u +%H:%M:%S)"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || { echo "sd_full_size.sh: installing .whl/*.whl failed" >&2; exit 1; }
fi
command -v nvidia-smi >/dev/null && [ -n "$GPU" ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i "$GPU"

# nvidia-smi's memory.used of the GPU every 100 ms into $1, in the background (none without a GPU).
POLL=
poll_start() {
  : >"$1"
  POLL=
  if command -v nvidia-smi >/dev/null && [ -n "$GPU" ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$GPU" -lms 100 >"$1" 2>/dev/null &
    POLL=$!
  fi
}
poll_stop() {
  if [ -n "$POLL" ]; then kill "$POLL" 2>/dev/null; wait "$POLL" 2>/dev/null; fi
  POLL=
}

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(folder boot torch)
[ "${phases[${#phases[@]}-1]}" = summary ] || phases+=(summary)
for phase in "${phases[@]}"; do
  case $phase in
    folder)
      say "sd_folder.py -> $SD"
      extra=()
      [ "$TINY" = 1 ] && extra+=(--tiny)
      [ -n "$GPU" ] || extra+=(--device cpu)
      "$PY" bench/torch/sd_folder.py --out "$SD" --tokenizer "$TOKENIZER" --dtype bf16 "${extra[@]}" --json "$OUT/sd_folder.json" 2>&1 | grep -v -E "Writing model shards|Processor" | tee "$OUT/sd_folder.log"
      [ "${PIPESTATUS[0]}" = 0 ] || { echo "sd_folder.py failed" >&2; exit 1; } ;;
    boot)
      [ -f "$SD/model_index.json" ] || { echo "boot: no $SD/model_index.json: run the folder phase first" >&2; exit 1; }
      sed -e "s|^path = .*|path = \"$SD\"|" -e "s|^prompts = .*|prompts = \"$REPO/examples/prompts/compositional.txt\"|" \
        examples/sd21-base.toml >"$WORK/sd.toml"
      grep -E "^(path|prompts) =" "$WORK/sd.toml"
      rm -rf "$WORK/run"
      say "boot-host: $STEPS steps at batch $BATCH, $DTYPE on $DEVICE"
      poll_start "$WORK/boot.smi"
      t0=$(date +%s.%N)
      BOOT__RUN__DEVICE=$DEVICE BOOT__RUN__DTYPE=$DTYPE BOOT__RUN__OUT_DIR=$WORK/run \
        BOOT__TRAIN__STEPS=$STEPS BOOT__TRAIN__BATCH_SIZE=$BATCH BOOT__TRAIN__CHECKPOINT_EVERY=1000000 BOOT__TRAIN__KEEP_CHECKPOINTS=1 \
        BOOT__TRAIN__GRID_EVERY=0 BOOT__TRAIN__GRID_SAMPLES=4 BOOT__TRAIN__LOG_EVERY=4 BOOT__TRAIN__PROGRESS=false \
        BOOT__TRAIN__PROGRESS_EVERY=10 BOOT__EVAL__AFTER_TRAINING=false \
        timeout "${BOOT_TIMEOUT:-420}" "$BIN/boot-host" --config "$WORK/sd.toml" >"$OUT/boot-host.log" 2>&1
      rc=$?
      t1=$(date +%s.%N)
      poll_stop
      echo "{\"rc\": $rc, \"batch\": $BATCH, \"steps\": $STEPS, \"wall_s\": $(awk "BEGIN { print $t1 - $t0 }")}" >"$WORK/boot.status"
      grep -E "progress|rror|WARN|panick" "$OUT/boot-host.log" | tail -n 8
      echo "boot-host: rc $rc"
      cp "$WORK/run/metrics.jsonl" "$OUT/boot-metrics.jsonl" 2>/dev/null
      # The end-of-run checkpoint (student, EMA, AdamW: ~14 GB at this size) is not needed.
      rm -rf "$WORK/run/checkpoints" ;;
    torch|compile)
      mode=eager
      [ "$phase" = compile ] && mode=compile
      folder=()
      [ -f "$SD/model_index.json" ] && folder=(--sd-folder "$SD")
      merge=()
      [ "$mode" = compile ] && [ -f "$OUT/torch.json" ] && merge=(--merge)
      say "boot_step.py --config $( [ "$TINY" = 1 ] && echo tiny-sd || echo sd21-base ), $mode, batch $BATCH"
      poll_start "$WORK/torch-$mode.smi"
      timeout "$( [ "$mode" = compile ] && echo "${COMPILE_TIMEOUT:-420}" || echo "${TORCH_TIMEOUT:-300}" )" \
        "$PY" bench/torch/boot_step.py --config "$( [ "$TINY" = 1 ] && echo tiny-sd || echo sd21-base )" "${folder[@]}" \
        --device "$( [ -n "$GPU" ] && echo "$DEVICE" || echo cpu )" --dtype "$DTYPE" --batch "$BATCH" --min-batch 1 --mode "$mode" \
        --steps "${TORCH_STEPS:-20}" --warmup "${TORCH_WARMUP:-6}" --time-budget "$( [ "$mode" = compile ] && echo "${COMPILE_BUDGET:-360}" || echo "${TORCH_BUDGET:-150}" )" \
        --ddim-steps "${TORCH_DDIM:-50}" --infer-reps 3 "${merge[@]}" --out "$OUT/torch.json" --label "sd_full_size.sh $mode" 2>&1 \
        | grep -v -E "Processor|FutureWarning|deprecate\(" | tee -a "$OUT/torch.log"
      rc=${PIPESTATUS[0]}
      poll_stop
      echo "{\"rc\": $rc}" >"$WORK/torch-$mode.status"
      echo "boot_step.py $mode: rc $rc" ;;
    summary)
      "$PY" - "$OUT" "$WORK" "$BATCH" "$BOOT_SKIP" "$DEVICE" "$DTYPE" <<'PY'
import json, os, sys
out, work, batch, skip = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def smi(name):
    """(peak MiB, first sample MiB) of an nvidia-smi trace."""
    try:
        vals = [float(l) for l in open(os.path.join(work, name)) if l.strip().replace(".", "").isdigit()]
    except OSError:
        return None
    return {"peak_mib": max(vals), "before_mib": vals[0], "samples": len(vals)} if vals else None

r = {"device": sys.argv[5], "dtype": sys.argv[6], "batch": batch, "sd_folder": load(os.path.join(out, "sd_folder.json"))}
# boot-host
st = load(os.path.join(work, "boot.status"))
if st is not None:
    b = dict(st)
    b["nvidia_smi"] = smi("boot.smi")
    try:
        lines = [json.loads(l) for l in open(os.path.join(out, "boot-metrics.jsonl")) if l.strip()]
        good = [l for l in lines if l.get("loss") is not None]
        z = good[-1]
        a = next((l for l in good if skip <= l["step"] < z["step"]), good[0])
        if a is z:
            a = {"step": 0, "seconds": 0.0}
        sps = (z["step"] - a["step"]) / (z["seconds"] - a["seconds"])
        b.update({"steps_per_s": sps, "samples_per_s": sps * b.get("batch", batch), "window_steps": [a["step"], z["step"]],
                  "steps_per_s_from_start": z["step"] / z["seconds"], "losses": [l["loss"] for l in good],
                  "losses_finite": len(good) == len(lines)})
    except Exception as e:  # noqa: BLE001
        b["metrics_error"] = repr(e)
    try:
        prog = [l for l in open(os.path.join(out, "boot-host.log")) if "progress" in l and "steps_per_s" in l]
        b["progress_lines"] = [l.strip()[-200:] for l in prog]
    except OSError:
        pass
    r["boot"] = b
# PyTorch
t = load(os.path.join(out, "torch.json"))
if t is not None:
    r["torch"] = {"device": t.get("device"), "engine": t.get("engine_detail"), "params": t.get("params")}
    for mode, m in t.get("modes", {}).items():
        if "error" in m:
            r["torch"][mode] = {"error": m["error"][:500]}
            continue
        tr = m["train"]
        r["torch"][mode] = {"batch": m["batch"], "steps_per_s": tr["steps_per_s"], "samples_per_s": tr["samples_per_s"],
                            "first_step_s": m["first_step_s"], "warmup_excess_s": m.get("warmup_excess_s"),
                            "torch_max_allocated_mib": m["memory"].get("torch_max_allocated_mib"),
                            "cudaMemGetInfo_peak_mib": m["memory"].get("peak_mib"), "nvidia_smi": smi(f"torch-{mode}.smi"),
                            "losses_finite": tr["losses_finite"], "mfu": m["flops"].get("mfu"), "achieved_tflops": m["flops"]["achieved_tflops"]}
        if mode == "compile":
            r["torch"][mode]["compile_s_estimate"] = m.get("warmup_excess_s")
        st = load(os.path.join(work, f"torch-{mode}.status"))
        if st:
            r["torch"][mode]["rc"] = st["rc"]
    for mode in ("eager", "compile"):
        bs, ts = r.get("boot", {}).get("steps_per_s"), r["torch"].get(mode, {}).get("steps_per_s")
        if bs and ts and r["torch"][mode]["batch"] == r["boot"].get("batch", batch):
            r[f"boot_over_torch_{mode}"] = bs / ts
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(r, f, indent=1)
brief = {k: v for k, v in r.items() if k.startswith("boot_over")}
print("summary:", json.dumps({"boot": {k: r.get("boot", {}).get(k) for k in ("rc", "steps_per_s", "samples_per_s", "nvidia_smi")},
                              **{m: {k: r.get("torch", {}).get(m, {}).get(k) for k in ("steps_per_s", "samples_per_s", "torch_max_allocated_mib", "nvidia_smi", "error")}
                                 for m in ("eager", "compile") if m in r.get("torch", {})}, **brief}))
PY
      ;;
    *) echo "sd_full_size.sh: unknown phase '$phase' (folder, boot, torch, compile)" >&2; exit 2 ;;
  esac
done
echo "== wrote $OUT: $(ls "$OUT" | tr '\n' ' ')"
