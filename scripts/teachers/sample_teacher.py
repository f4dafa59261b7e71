#!/usr/bin/env python3
"""DDIM samples of a diffusers pixel pipeline folder as a PNG grid, to eyeball a trained teacher.

    python scripts/teachers/sample_teacher.py --model teachers/fashion-mnist --count 64 [--steps 50] [--png grid.png]

The sampler is diffusers' `DDIMScheduler` built from the folder's scheduler config with the settings boot's
own DDIM-N matches (timestep_spacing "trailing", set_alpha_to_one, clip_sample off, eta 0; see
scripts/fixtures/make_pipeline_fixtures.py), so the grid shows what boot's teacher DDIM-N gives.
"""

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from diffusers import DDIMScheduler, UNet2DModel


@torch.no_grad()
def ddim_samples(unet: UNet2DModel, scheduler_config, count: int, steps: int, seed: int, device: str) -> torch.Tensor:
    """`count` DDIM-`steps` samples in [-1, 1] (float32, on the CPU); class-conditional models get labels i % classes."""
    ddim = DDIMScheduler.from_config(scheduler_config, timestep_spacing="trailing", set_alpha_to_one=True,
                                     clip_sample=False)
    ddim.set_timesteps(steps)
    cfg = unet.config
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(count, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=gen).to(device)
    labels = None
    if cfg.num_class_embeds:
        labels = torch.arange(count, device=device) % cfg.num_class_embeds
    dtype = next(unet.parameters()).dtype
    for t in ddim.timesteps:
        eps = unet(x.to(dtype), t, class_labels=labels).sample.float()
        x = ddim.step(eps, t, x, eta=0.0).prev_sample
    return x.cpu()


def save_grid(images: torch.Tensor, path: Path) -> None:
    """Writes `[N, C, H, W]` images in [-1, 1] as one PNG grid (1-pixel gaps)."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pix = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = pix[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(path)


def sample_folder(model: Path, count: int, steps: int, seed: int, device: str, png: Path) -> None:
    """Loads `model/unet` (in float32) and `model/scheduler`, samples, and writes the grid to `png`."""
    unet = UNet2DModel.from_pretrained(model / "unet", torch_dtype=torch.float32).to(device).eval()
    config = DDIMScheduler.load_config(model / "scheduler")
    save_grid(ddim_samples(unet, config, count, steps, seed, device), png)
    print(f"{png}: {count} DDIM-{steps} samples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="pipeline folder (unet/, scheduler/)")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--png", type=Path, help="default: <model>/samples-ddim<steps>.png")
    args = ap.parse_args()
    sample_folder(args.model, args.count, args.steps, args.seed, args.device,
                  args.png or args.model / f"samples-ddim{args.steps}.png")


if __name__ == "__main__":
    main()
