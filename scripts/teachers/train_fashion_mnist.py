#!/usr/bin/env python3
"""Train a small Fashion-MNIST teacher with diffusers' UNet2DModel + DDPMScheduler recipe, for a wall-clock budget.

    python scripts/teachers/train_fashion_mnist.py --data data/fashion-mnist/fashion-mnist-train.npz \
        --out teachers/fashion-mnist [--minutes 8] [--batch 256] [--lr 3e-4] [--seed 0] [--device cuda] [--sample 64]

The recipe of diffusers' examples/unconditional_image_generation/train_unconditional.py: eps-prediction MSE at
uniform timesteps, AdamW (betas 0.95/0.999, weight decay 1e-6), linear lr warm-up then constant (the number of
steps is not known in advance under a time budget, so the recipe's cosine decay has no end point), gradient
clipping at 1.0 and an EMA of the weights (`diffusers.training_utils.EMAModel`, warm-up power 3/4, max decay
0.9999). bf16 autocast on CUDA. Images are scaled to [-1, 1] and padded 28 -> 32 with -1 (2 pixels each side);
no horizontal flips (Fashion-MNIST's shoes all face one way: flips would add images the data set lacks).

Writes a diffusers pipeline folder (`DDPMPipeline.save_pretrained`: model_index.json, unet/ with the EMA weights
in float16, scheduler/) and `training.json` (versions, card, steps, loss curve, command line) into --out.
"""

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import diffusers
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_teacher import sample_folder  # noqa: E402

MAX_FILE_BYTES = 16 * 2**20
WARMUP_STEPS = 500


def build_unet(classes: int) -> UNet2DModel:
    """The teacher network: 6.3M parameters (12.1 MiB in float16), self-attention only at 8x8."""
    return UNet2DModel(
        sample_size=32, in_channels=1, out_channels=1, layers_per_block=2,
        block_out_channels=(32, 64, 128, 128),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=32, norm_num_groups=32,
        num_class_embeds=classes or None,
    )


def build_scheduler() -> DDPMScheduler:
    """1000 steps of the cosine schedule (`squaredcos_cap_v2`): at 32x32 the linear schedule spends its last few
    hundred steps on near-pure noise (Nichol & Dhariwal 2021); the cosine one is also DeepFloyd IF's. clip_sample
    off: boot's samplers do not clip, so diffusers' pipelines on this folder sample as boot does."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                         clip_sample=False)


def load_images(path: Path, limit: int, device: str) -> tuple:
    """uint8 images [N, 28, 28] and labels [N] from the fetch script's .npz, on `device`."""
    try:
        with np.load(path) as f:
            images, labels = f["images"], f["labels"]
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"{path}: not a Fashion-MNIST .npz from scripts/data/fetch_fashion_mnist.py ({e})")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        sys.exit(f"{path}: images are {images.dtype} {images.shape}, expected uint8 [N, 28, 28]")
    if limit:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images).to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


def to_model_space(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float [B, 1, 32, 32] in [-1, 1], padded with -1."""
    x = images_u8.float().unsqueeze(1) / 127.5 - 1.0
    return F.pad(x, (2, 2, 2, 2), value=-1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="fashion-mnist-train.npz")
    ap.add_argument("--out", type=Path, required=True, help="pipeline folder to write")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (smoke tests)")
    ap.add_argument("--classes", action="store_true", help="class-conditional (num_class_embeds = 10)")
    ap.add_argument("--log-every", type=int, default=100, help="loss curve resolution, in steps")
    ap.add_argument("--sample", type=int, default=0, help="after training, write a grid of N DDIM-50 samples")
    args = ap.parse_args()
    if args.batch < 1 or args.minutes <= 0 or args.log_every < 1:
        sys.exit("--batch and --log-every must be >= 1 and --minutes > 0")

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    images, labels = load_images(args.data, args.limit, args.device)
    n = images.shape[0]

    unet = build_unet(10 if args.classes else 0).to(device).train()
    params = sum(p.numel() for p in unet.parameters())
    print(f"UNet2DModel: {params:,} parameters ({params * 2 / 2**20:.1f} MiB in float16); {n} images on {device}")
    noise_scheduler = build_scheduler()
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_sched = get_scheduler("constant_with_warmup", optimizer=opt, num_warmup_steps=WARMUP_STEPS)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4,
                   model_cls=UNet2DModel, model_config=unet.config, foreach=True)

    gen = torch.Generator(device=device).manual_seed(args.seed)
    order, cursor = torch.randperm(n, generator=gen, device=device), 0
    curve, window, step = [], torch.zeros((), device=device), 0
    budget = args.minutes * 60.0
    start = time.monotonic()
    while time.monotonic() - start < budget:
        if cursor + args.batch > n:
            order, cursor = torch.randperm(n, generator=gen, device=device), 0
        idx = order[cursor:cursor + args.batch] if args.batch <= n else torch.randint(n, (args.batch,), generator=gen, device=device)
        cursor += args.batch
        x0 = to_model_space(images[idx])
        noise = torch.randn(x0.shape, generator=gen, device=device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (x0.shape[0],), generator=gen, device=device)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            pred = unet(x_t, t, class_labels=labels[idx] if args.classes else None).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        ema.step(unet.parameters())
        window += loss.detach()
        step += 1
        if step % args.log_every == 0:
            elapsed = time.monotonic() - start
            mean = (window / args.log_every).item()
            window.zero_()
            curve.append({"step": step, "loss": round(mean, 6), "seconds": round(elapsed, 1)})
            print(f"step {step}  loss {mean:.4f}  {step / elapsed:.2f} steps/s  lr {lr_sched.get_last_lr()[0]:.2e}",
                  flush=True)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.monotonic() - start
    print(f"trained {step} steps in {seconds:.1f} s ({seconds / max(step, 1) * 1000:.1f} ms/step)")

    ema.copy_to(unet.parameters())
    unet = unet.to(torch.float16).eval()
    DDPMPipeline(unet=unet, scheduler=noise_scheduler).save_pretrained(args.out)
    weights = args.out / "unet" / "diffusion_pytorch_model.safetensors"
    size = weights.stat().st_size
    if size > MAX_FILE_BYTES:
        sys.exit(f"{weights}: {size} bytes, over the 16 MiB limit")

    record = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "numpy": np.__version__},
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "precision": "bf16 autocast, f32 master weights; saved EMA weights in float16" if cuda else "f32",
        "data": {"file": str(args.data), "images": n, "padding": "28 -> 32 with -1", "classes": args.classes},
        "parameters": params, "weights_bytes": size,
        "steps": step, "batch": args.batch, "lr": args.lr, "warmup_steps": WARMUP_STEPS, "seed": args.seed,
        "minutes_budget": args.minutes, "seconds": round(seconds, 1),
        "ms_per_step": round(seconds / max(step, 1) * 1000, 2),
        "ema": {"max_decay": 0.9999, "power": 0.75, "final_decay": ema.cur_decay_value},
        "scheduler": {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "epsilon"},
        "loss_curve": curve,
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.out}: pipeline folder, {weights.name} {size / 2**20:.1f} MiB, training.json")
    if args.sample:
        sample_folder(args.out, args.sample, 50, args.seed, args.device, args.out / "samples-ddim50.png")


if __name__ == "__main__":
    main()
