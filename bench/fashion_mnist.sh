#!/usr/bin/env bash
# The paper's Table 1 on the Fashion-MNIST teacher trained here (teachers/fashion-mnist), on a GPU, in phases
# that each fit one device call; every number comes from boot-host itself (examples/fashion-mnist.toml).
#
#   bash bench/fashion_mnist.sh stats     # FD reference statistics of the 10k test images -> $WORK/fd-stats.safetensors
#   bash bench/fashion_mnist.sh teacher   # teacher DDIM-1/10/50/250 on EVAL_SAMPLES: FD, ode_mse, images/s -> teacher.json
#   bash bench/fashion_mnist.sh train     # BOOT for at most TRAIN_SECONDS (a checkpoint every CHECKPOINT_EVERY steps)
#   bash bench/fashion_mnist.sh curve     # FD of every kept checkpoint on CURVE_SAMPLES -> fd-curve.jsonl
#   bash bench/fashion_mnist.sh student   # the newest checkpoint, EMA and live weights, on EVAL_SAMPLES -> student*.json,
#                                         # and the Figure-12 pair: student and teacher DDIM-50 from the same 64 noises
#   bash bench/fashion_mnist.sh sweep     # the SWEEP variants side by side on the one GPU, TRAIN_SECONDS each, then
#                                         # each one's FD (EMA and live) on CURVE_SAMPLES -> sweep.jsonl
#   bash bench/fashion_mnist.sh best      # later phases continue the sweep's best variant (lowest FD): its run
#                                         # folder as RUN, its overrides exported (sweep.jsonl in $OUT or $WORK)
# `train` continues a run folder that already holds checkpoints (--resume) with the same overrides.
# Several phases in one call: `bash bench/fashion_mnist.sh stats train curve student`.
#
# Env: OUT (results folder, default bench/results/fashion-mnist-<time>), BOOT_DIR (the unpacked CUDA build,
# default /tmp/boot), DEVICE (cuda:0), DTYPE (bf16), DATA (data/fashion-mnist: scripts/data/fetch_fashion_mnist.py),
# NETWORK (the FD network: scripts/fd/fetch_efficientnet_lite0.sh), WORK (run folders and their checkpoints,
# kept out of $OUT: default /tmp/boot-fashion-mnist), RUN (the run folder, default $WORK/run),
# TRAIN_SECONDS (480), CHECKPOINT_EVERY (250), EVAL_SAMPLES (10000), CURVE_SAMPLES (2048), EVAL_BATCH (1000),
# SWEEP (space-separated `name:KEY=VALUE,KEY=VALUE` with BOOT__SECTION__KEY overrides of the example).
# Extra BOOT__... variables in the environment override the example as usual (e.g. BOOT__TRAIN__LR).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-bench/results/fashion-mnist-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=${BOOT_DIR:-/tmp/boot}
DATA=${DATA:-data/fashion-mnist}
NETWORK=${NETWORK:-data/fd/efficientnet-lite0.safetensors}
WORK=${WORK:-/tmp/boot-fashion-mnist}
mkdir -p "$WORK"
RUN=${RUN:-$WORK/run}
TRAIN_SECONDS=${TRAIN_SECONDS:-480}
EVAL_SAMPLES=${EVAL_SAMPLES:-10000}
CURVE_SAMPLES=${CURVE_SAMPLES:-2048}
export BOOT__RUN__DEVICE=${DEVICE:-cuda:0} BOOT__RUN__DTYPE=${DTYPE:-bf16}
export BOOT__EVAL__FD_NETWORK=$(realpath "$NETWORK") BOOT__EVAL__BATCH_SIZE=${EVAL_BATCH:-1000}
export BOOT__TRAIN__CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-250} BOOT__TRAIN__KEEP_CHECKPOINTS=1000
export BOOT__TRAIN__PROGRESS_EVERY=250 BOOT__EVAL__AFTER_TRAINING=false
STATS=$WORK/fd-stats.safetensors

# The example with `[eval] ddim_steps` replaced (a list: environment overrides take scalars only) and the
# teacher's path made absolute, written to $WORK/<name>.toml.
config() {
  sed -e "s|^ddim_steps = .*|ddim_steps = $2|" -e "s|^path = \"../teachers/|path = \"$REPO/teachers/|" \
    examples/fashion-mnist.toml >"$WORK/$1.toml"
  echo "$WORK/$1.toml"
}
newest() { ls "$1"/checkpoints/step-*.safetensors 2>/dev/null | sort | tail -n 1; }
say() { echo "== $* $(date -u +%H:%M:%S)"; }
host() { "$BIN/boot-host" "$@"; }

# Trains in run folder $1 with the environment's overrides for at most TRAIN_SECONDS; keeps its log.
train() {
  local run=$1 cfg
  cfg=$(config "train-$(basename "$run")" "[]")
  local resume=
  [ -z "$(newest "$run")" ] || resume=--resume
  BOOT__RUN__OUT_DIR=$run timeout "$TRAIN_SECONDS" "$BIN/boot-host" --config "$cfg" $resume >>"$run.log" 2>&1
  local rc=$?
  grep -E "progress|rror|WARN" "$run.log" | tail -n 4
  [ "$rc" = 0 ] || [ "$rc" = 124 ] || { echo "training in $run failed (rc $rc)"; return 1; }
}

# FD of checkpoint $2 of run $1 on $3 samples (student only; ode_mse against DDIM-1 is not meaningful here);
# `live` as $4 takes the live weights. Prints one JSON line {step, weights, fd}.
fd_of() {
  local run=$1 ck=$2 n=$3 live=${4:-} cfg step
  cfg=$(config "curve-$(basename "$run")" "[]")
  step=$(basename "$ck" .safetensors | sed 's/^step-0*//')
  BOOT__RUN__OUT_DIR=$run BOOT__EVAL__SAMPLES=$n BOOT__EVAL__REFERENCE_STEPS=1 BOOT__EVAL__FD_STATS=$STATS \
    host eval --config "$cfg" --checkpoint "$ck" ${live:+--live} --out "$run/fd-$step${live:+-live}.json" >/dev/null 2>"$run/fd.err" \
    || { tail -n 3 "$run/fd.err"; return 1; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["student_1"]; print(json.dumps({"step": int(sys.argv[2]), "weights": sys.argv[3], "fd": r["fd"], "fd_samples": r["fd_samples"]}))' \
    "$run/fd-$step${live:+-live}.json" "$step" "${live:-ema}"
}

for phase in "$@"; do
  case $phase in
    stats)
      say "fd-stats: 10k test images"
      host fd-stats --config "$(config stats "[]")" --data "$DATA/fashion-mnist-test.npz" --key images --out "$STATS" 2>&1 | grep -v INFO ;;
    teacher)
      say "teacher DDIM-1/10/50/250 on $EVAL_SAMPLES samples"
      BOOT__RUN__OUT_DIR=$RUN BOOT__EVAL__SAMPLES=$EVAL_SAMPLES BOOT__EVAL__REFERENCE_STEPS=250 BOOT__EVAL__FD_STATS=$STATS \
        host eval --config "$(config teacher "[1, 10, 50, 250]")" --teacher-only --out "$OUT/teacher.json" 2>&1 | grep -v INFO ;;
    train)
      say "BOOT training, at most $TRAIN_SECONDS s"
      mkdir -p "$RUN" && train "$RUN"; cp "$RUN/metrics.jsonl" "$RUN.log" "$OUT/" ;;
    curve)
      say "FD curve on $CURVE_SAMPLES samples"
      : >"$OUT/fd-curve.jsonl"
      for ck in "$RUN"/checkpoints/step-*.safetensors; do fd_of "$RUN" "$ck" "$CURVE_SAMPLES" | tee -a "$OUT/fd-curve.jsonl"; done ;;
    student)
      ck=$(newest "$RUN")
      say "student $ck on $EVAL_SAMPLES samples"
      cfg=$(config student "[]")
      for live in "" live; do
        BOOT__RUN__OUT_DIR=$RUN BOOT__EVAL__SAMPLES=$EVAL_SAMPLES BOOT__EVAL__REFERENCE_STEPS=250 BOOT__EVAL__FD_STATS=$STATS \
          host eval --config "$cfg" --checkpoint "$ck" ${live:+--live} --out "$OUT/student${live:+-live}.json" 2>&1 | grep -v INFO
      done
      for sampler in student ddim-50; do
        BOOT__RUN__OUT_DIR=$RUN host sample --config "$cfg" --checkpoint "$ck" --sampler $sampler --count 64 \
          --out "$OUT/figure12-$sampler.safetensors" 2>&1 | grep -v INFO
      done ;;
    sweep)
      say "sweep: $SWEEP, $TRAIN_SECONDS s each, side by side"
      pids=()
      for variant in $SWEEP; do
        name=${variant%%:*}
        mkdir -p "$WORK/sweep-$name"
        (IFS=, ; export ${variant#*:}; train "$WORK/sweep-$name") &
        pids+=($!)
      done
      wait "${pids[@]}"
      say "sweep: FD of each variant's newest checkpoint on $CURVE_SAMPLES samples"
      : >"$OUT/sweep.jsonl"
      for variant in $SWEEP; do
        name=${variant%%:*}
        ck=$(newest "$WORK/sweep-$name")
        [ -n "$ck" ] || { echo "$name: no checkpoint"; continue; }
        for live in "" live; do
          line=$(fd_of "$WORK/sweep-$name" "$ck" "$CURVE_SAMPLES" $live) || continue
          echo "{\"variant\": \"$name\", \"overrides\": \"${variant#*:}\", \"result\": $line}" | tee -a "$OUT/sweep.jsonl"
        done
        cp "$WORK/sweep-$name/metrics.jsonl" "$OUT/sweep-$name.metrics.jsonl"
        cp "$WORK/sweep-$name.log" "$OUT/sweep-$name.log"
      done
      cp "$OUT/sweep.jsonl" "$WORK/sweep.jsonl" ;;
    best)
      sweep=$OUT/sweep.jsonl
      [ -f "$sweep" ] || sweep=$WORK/sweep.jsonl
      [ -f "$sweep" ] || { echo "best: no sweep.jsonl in $OUT or $WORK: run the sweep phase first" >&2; exit 2; }
      pick=$(python3 -c 'import json,sys; rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; b=min(rows, key=lambda r: r["result"]["fd"]); print(b["variant"], b["overrides"])' "$sweep")
      RUN=$WORK/sweep-${pick%% *}
      IFS=, read -r -a kv <<<"${pick#* }"
      export "${kv[@]}"
      say "best: ${pick%% *} (${pick#* }), continuing $RUN" ;;
    *) echo "fashion_mnist.sh: unknown phase '$phase' (stats, teacher, train, curve, student, sweep, best)" >&2; exit 2 ;;
  esac
done
