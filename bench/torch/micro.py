#!/usr/bin/env python3
"""PyTorch eager counterpart of `boot-bench --micro` (bench/src/micro.rs): the UNets' building blocks timed one at
a time, forward and forward + backward seeded with ones, at the same shapes and dtype. Group norm runs as
guided-diffusion's GroupNorm32 (in float32, cast back), convolutions in the activation dtype (cuDNN,
benchmark mode).

    python3 bench/torch/micro.py --device cuda:0 --dtype bf16 --iters 10 --out micro-torch.json
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F

SHAPES = [("cifar10 32x32", [128, 128, 32, 32]), ("imagenet64 64x64", [128, 192, 64, 64])]


def timed(dev, warmup, iters, f):
    for _ in range(warmup):
        f()
    v = []
    for _ in range(iters):
        torch.cuda.synchronize(dev) if dev.type == "cuda" else None
        t = time.perf_counter()
        f()
        torch.cuda.synchronize(dev) if dev.type == "cuda" else None
        v.append(time.perf_counter() - t)
    v.sort()
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for shape_name, dims in SHAPES:
        b, c = dims[0], dims[1]
        x = torch.randn(dims, device=dev).to(dtype).requires_grad_(True)
        x2 = torch.randn(dims, device=dev).to(dtype)
        emb = torch.randn(b, c, 1, 1, device=dev).to(dtype)
        w = (torch.randn(c, c, 3, 3, device=dev) / (9 * c) ** 0.5).requires_grad_(True)
        bias = torch.zeros(c, device=dev, requires_grad=True)
        gw = torch.ones(c, device=dev, requires_grad=True)
        gb = torch.zeros(c, device=dev, requires_grad=True)

        def gn(t):
            return F.group_norm(t.float(), 32, gw, gb, 1e-5).to(t.dtype)

        ops = [
            ("conv3x3", lambda t: F.conv2d(t, w.to(dtype), padding=1)),
            ("conv3x3+bias", lambda t: F.conv2d(t, w.to(dtype), bias.to(dtype), padding=1)),
            ("group_norm", gn),
            ("silu", F.silu),
            ("group_norm+silu", lambda t: F.silu(gn(t))),
            ("add", lambda t: t + x2),
            ("broadcast_add", lambda t: t + emb),
            ("upsample2x", lambda t: F.interpolate(t, scale_factor=2, mode="nearest")),
        ]
        for name, op in ops:
            with torch.no_grad():
                fwd = timed(dev, 3, a.iters, lambda: op(x))
            fwd_bwd = timed(dev, 3, a.iters, lambda: (lambda y: y.backward(torch.ones_like(y)))(op(x)))
            print(f"torch micro: {shape_name:>17} {name:>16}: forward {1e3 * fwd:8.3f} ms, forward+backward {1e3 * fwd_bwd:8.3f} ms", flush=True)
            rows.append({"shape": shape_name, "dims": dims, "op": name, "forward_ms": 1e3 * fwd, "forward_backward_ms": 1e3 * fwd_bwd})
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    with open(a.out, "w") as f:
        json.dump({"device": name, "dtype": a.dtype, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
