#!/usr/bin/env python3
"""Prints the short table of a benchmark run: boot vs torch eager vs torch.compile, from the JSON files in a
folder (boot-<config>.json from boot-bench, torch-<config>.json from bench/torch/boot_step.py, peak.json).

    python3 bench/summarize.py DIR            # prints the tables; also writes DIR/summary.txt
"""

import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or not b else a / b


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    lines = []
    peak = load(os.path.join(root, "peak.json"))
    if peak:
        lines.append(f"device: {get(peak, 'device', 'name')}; bf16 {peak['n']}^3 matmul peak {peak['tflops']:.0f} TFLOP/s (MFU denominator)")
    configs = sorted({os.path.basename(p).split("-", 1)[1][:-5] for p in glob.glob(os.path.join(root, "*-*.json"))
                      if os.path.basename(p).startswith(("boot-", "torch-"))}, key=lambda c: ("tiny" in c, c))
    train_rows, infer_rows = [], []
    for c in configs:
        boot = load(os.path.join(root, f"boot-{c}.json")) or {}
        torch_run = load(os.path.join(root, f"torch-{c}.json")) or {}
        modes = torch_run.get("modes", {})
        eager, comp = modes.get("eager", {}), modes.get("compile", {})
        sb, se, sc = get(boot, "train", "samples_per_s"), get(eager, "train", "samples_per_s"), get(comp, "train", "samples_per_s")
        mem = lambda m: get(m, "memory", "peak_mib")
        train_rows.append([
            c, f"{get(boot, 'batch') or '-'}/{get(eager, 'batch') or '-'}/{get(comp, 'batch') or '-'}",
            fmt(sb, ".2f"), fmt(se, ".2f"), fmt(sc, ".2f"), fmt(ratio(sb, se), ".3f"), fmt(ratio(sb, sc), ".3f"),
            fmt(get(boot, "flops", "mfu") and 100 * get(boot, "flops", "mfu")),
            fmt(get(eager, "flops", "mfu") and 100 * get(eager, "flops", "mfu")),
            fmt(get(comp, "flops", "mfu") and 100 * get(comp, "flops", "mfu")),
            fmt(get(boot, "memory", "train_peak_mib"), ".0f"), fmt(mem(eager), ".0f"), fmt(mem(comp), ".0f"),
        ])
        inf = lambda d, k: get(d, "inference", k, "images_per_s")
        infer_rows.append([
            c, f"{get(boot, 'inference', 'batch') or '-'}/{get(eager, 'inference', 'batch') or '-'}/{get(comp, 'inference', 'batch') or '-'}",
            fmt(inf(boot, "student_one_step")), fmt(inf(eager, "student_one_step")), fmt(inf(comp, "student_one_step")),
            fmt(inf(boot, "teacher_ddim"), ".2f"), fmt(inf(eager, "teacher_ddim"), ".2f"), fmt(inf(comp, "teacher_ddim"), ".2f"),
        ])
        for name, d in (("boot", boot), ("torch eager", eager), ("torch compile", comp)):
            if get(d, "error"):
                lines.append(f"{c} {name}: ERROR {d['error'][:200]}")
            if get(d, "train", "estimated_from_single_steps") or get(d, "stopped_early_by_budget"):
                lines.append(f"{c} {name}: cut short by the time budget ({get(d, 'timed_steps')} timed steps)")
            if get(d, "inference", "teacher_ddim", "extrapolated"):
                lines.append(f"{c} {name}: DDIM timed over {get(d, 'inference', 'teacher_ddim', 'steps_timed')} steps, extrapolated")
        lines.append(f"{c}: dtype boot {get(boot, 'dtype') or '-'}{' +tf32' if get(boot, 'tf32') else ''}, torch {get(torch_run, 'dtype') or '-'}; "
                     f"boot first step {fmt(get(boot, 'first_step_s'))} s, torch compile first step {fmt(get(comp, 'first_step_s'))} s")
        if get(boot, "train", "phases_mean_s"):
            ph = boot["train"]["phases_mean_s"]
            lines.append(f"{c}: boot phases s/step: " + ", ".join(f"{k} {v:.3f}" for k, v in ph.items()))
        if get(boot, "flops", "forward_per_sample_teacher") and get(torch_run, "flops", "forward_per_sample_teacher"):
            fb, ft = boot["flops"]["forward_per_sample_teacher"], torch_run["flops"]["forward_per_sample_teacher"]
            lines.append(f"{c}: forward GFLOP/sample (teacher): boot's count {fb / 1e9:.2f}, torch FlopCounterMode {ft / 1e9:.2f}")

    for path in sorted(glob.glob(os.path.join(root, "check-*.json"))):
        ck = load(path) or {}
        lines.append(f"same step: {ck.get('config')} batch {ck.get('batch')}: core's step-0 loss {get(ck, 'boot', 'loss_total')} vs torch "
                     f"{get(ck, 'torch', 'loss_total')}, relative difference {fmt(ck.get('rel_err_total'), '.1e')} "
                     f"({'ok' if ck.get('ok') else 'MISMATCH'})")

    def table(head, rows):
        w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        out = ["  ".join(str(x).rjust(w[i]) for i, x in enumerate(head))]
        out += ["  ".join(str(x).rjust(w[i]) for i, x in enumerate(r)) for r in rows]
        return out

    text = []
    text.append("TRAINING STEP (samples/s; batch boot/eager/compile; MFU %; peak device memory MiB)")
    text += table(["config", "batch", "boot", "eager", "compile", "boot/eager", "boot/comp", "MFU boot", "eager", "comp",
                   "mem boot", "eager", "comp"], train_rows)
    text.append("")
    text.append("INFERENCE (images/s: one-step student, teacher DDIM-50 with the run's guidance)")
    text += table(["config", "batch", "student boot", "eager", "compile", "DDIM boot", "eager", "compile"], infer_rows)
    text += [""] + lines
    out = "\n".join(text)
    print(out)
    with open(os.path.join(root, "summary.txt"), "w") as f:
        f.write(out + "\n")


if __name__ == "__main__":
    main()
