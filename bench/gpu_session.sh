#!/usr/bin/env bash
# One device call that verifies and benchmarks a CUDA build (scripts/cuda/build.sh + pack.sh, tests packed):
# the sdk op and parity tests on CUDA in f32 and bf16, the analytic end-to-end tests on CUDA, boot-host on
# the paper's ImageNet-64 config in bf16 against boot-bench on the same config (bench/host_vs_bench.sh), the
# building-block micro-benchmarks (boot and PyTorch, off by default), then bench/run_all.sh (boot vs PyTorch
# eager).
#
#   bash scripts/cuda/on-device.sh bash bench/gpu_session.sh       # carry ["dist", ".whl"]
#
# Writes into $OUT (8 files at most come back): host-vs-bench.json, run_all.sh's files (6 here), and with
# BENCH_MICRO=1 micro-boot.json and micro-torch.json (then set HOST_COMPARE=0 to stay within 8); summary.txt is
# dropped (python3 bench/summarize.py DIR remakes it). A device command may run 10 minutes: with everything
# on, shorten TESTS or BENCH_BUDGET_S. Env: IMAGENET_BATCH (128), BENCH_BUDGET_S (300), HOST_COMPARE (1),
# BENCH_MICRO (0), TESTS (the test executables).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/session-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
TESTS=${TESTS:-"fused_update silu group_norm group_norm_modulated resample_ops channel_bias softmax conv_backward edm_parity layers teacher_student adm_parity diffusers_parity teacher student"}
for dt in f32 bf16; do
  for t in $TESTS; do
    r=$(BOOT_TEST_DEVICE=cuda:0 BOOT_TEST_DTYPE=$dt timeout 120 "$t" 2>&1 | grep -E "^test result|panicked" | tail -n 2)
    echo "test $dt $t: ${r:-no result}"
  done
done
BOOT__RUN__DEVICE=cuda:0 timeout 240 end_to_end --test-threads 1 2>&1 | grep -E "^test |test result|panicked" | sed 's/^/end_to_end cuda: /'
[ "${HOST_COMPARE:-1}" = 1 ] && OUT=$OUT HOST_BATCH=${IMAGENET_BATCH:-128} bash bench/host_vs_bench.sh 2>&1 | sed 's/^/host-vs-bench: /'
[ "${BENCH_MICRO:-0}" = 1 ] && /tmp/boot/boot-bench --config cifar10 --micro --device cuda:0 --dtype bf16 --steps 10 --out "$OUT/micro-boot.json" 2>&1 | grep -E "micro:|rror"
[ "${BENCH_MICRO:-0}" = 1 ] && python3 bench/torch/micro.py --device cuda:0 --dtype bf16 --iters 10 --out "$OUT/micro-torch.json"
OUT=$OUT BENCH_BUDGET_S=${BENCH_BUDGET_S:-300} IMAGENET_BATCH=${IMAGENET_BATCH:-128} IMAGENET_MIN_BATCH=64 BENCH_STEPS=8 \
  BENCH_WARMUP=3 BENCH_COMPILE=0 BENCH_CHECK=0 bash bench/run_all.sh 2>&1 | grep -E "s/step|samples/s|out of memory|^ *(cifar|imagenet)|phases|rror" | tail -30
rm -f "$OUT/summary.txt"
