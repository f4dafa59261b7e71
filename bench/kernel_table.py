#!/usr/bin/env python3
"""Per-kernel GPU time from Nsight Compute CSVs (`ncu --csv --page raw --metrics gpu__time_duration.sum`), for
boot and the PyTorch reference side by side: the total kernel time per training step, a breakdown by
category (convolution, matrix product, normalisation, element-wise, reduction, copy, ...) and the top kernels.

    python3 bench/kernel_table.py --steps 4 boot=boot.csv torch=torch.csv
"""

import argparse
import csv
import re
from collections import defaultdict

# Category of a kernel, by the first pattern its (lower-case) name matches.
CATEGORIES = [
    ("convolution (cuDNN)", r"conv|cudnn|dgrad|wgrad|fprop|implicit|xmma_(?!gemm)|nchwtonhwc|nhwctonchw|winograd|fft"),
    ("matrix product (cuBLAS)", r"gemm|cublas|cutlass|sm90_xmma_gemm|ampere_|hopper_|nvjet"),
    ("group norm", r"^gn_|group_norm|groupnorm"),
    ("softmax", r"softmax"),
    ("reduction", r"reduce|fast_sum|fast_max|fast_min|sum_|argmax|argmin"),
    ("copy / cast / layout", r"copy|cast|ucopy|to_dtype|transpose|permute|cat|contiguous|where|index|gather|scatter"),
    ("optimizer / EMA", r"adam|ema|multi_tensor|foreach"),
    ("element-wise", r"elementwise|vectorized|unrolled|affine|badd|bmul|bsub|bdiv|bmaximum|bminimum|usilu|uexp|usqrt|urecip|"
                     r"uneg|usqr|ugelu|utanh|ucos|usin|powf|fill|const_set|silu|mul|add|sub|div|exp|sqrt"),
]


def category(name):
    n = name.lower()
    for cat, pat in CATEGORIES:
        if re.search(pat, n):
            return cat
    return "other"


def short(name, width=70):
    n = re.sub(r"\(.*$", "", name)          # drop the argument list
    n = re.sub(r"<.*>", "<..>", n)          # and template arguments
    return n if len(n) <= width else n[: width - 3] + "..."


def load(path):
    """(kernel name, seconds) of every kernel launch in an ncu raw CSV."""
    rows = []
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]  # ncu prefixes its own messages with "=="
    reader = csv.DictReader(lines)
    for r in reader:
        v = r.get("gpu__time_duration.sum")
        name = r.get("Kernel Name") or r.get("Function Name") or "?"
        try:
            rows.append((name, float(v.replace(",", "")) * 1e-9))  # --print-units base: nanoseconds
        except (TypeError, ValueError):
            continue  # the units row
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4, help="steps in the profiled window")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("runs", nargs="+", help="label=path.csv")
    a = ap.parse_args()
    data = {}
    for spec in a.runs:
        label, path = spec.split("=", 1)
        try:
            data[label] = load(path)
        except OSError as e:
            print(f"{label}: {e}")
    labels = list(data)
    print(f"GPU kernel time per step (ncu gpu__time_duration, {a.steps}-step window; kernels serialised)")
    print(f"{'':28}" + "".join(f"{lb + ' ms':>14}{'launches':>10}" for lb in labels))
    totals = {lb: sum(t for _, t in rows) / a.steps for lb, rows in data.items()}
    counts = {lb: len(rows) / a.steps for lb, rows in data.items()}
    print(f"{'total':28}" + "".join(f"{1e3 * totals[lb]:14.1f}{counts[lb]:10.0f}" for lb in labels))
    cats = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for lb, rows in data.items():
        for name, t in rows:
            c = cats[category(name)][lb]
            c[0] += t / a.steps
            c[1] += 1 / a.steps
    order = sorted(cats, key=lambda c: -max(cats[c][lb][0] for lb in labels))
    for c in order:
        print(f"{c:28}" + "".join(f"{1e3 * cats[c][lb][0]:14.1f}{cats[c][lb][1]:10.0f}" for lb in labels))
    for lb, rows in data.items():
        per = defaultdict(lambda: [0.0, 0])
        for name, t in rows:
            per[short(name)][0] += t / a.steps
            per[short(name)][1] += 1 / a.steps
        print(f"\n{lb}: top {a.top} kernels (ms per step, launches per step, share)")
        for name, (t, n) in sorted(per.items(), key=lambda kv: -kv[1][0])[: a.top]:
            print(f"  {1e3 * t:9.2f} {n:7.0f} {100 * t / max(totals[lb], 1e-12):5.1f}%  {name}")


if __name__ == "__main__":
    main()
