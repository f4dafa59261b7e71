#!/usr/bin/env python3
"""Writes a random-weight Stable Diffusion 2.1-base folder, laid out as `StableDiffusionPipeline.save_pretrained`
writes it (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), for benchmarks that need the
real model's sizes but not its weights (bench/sd_full_size.sh: boot-host's `sd` teacher and the PyTorch
reference, bench/torch/boot_step.py --config sd21-base, read the same folder).

    python3 bench/torch/sd_folder.py --tokenizer models/tests/fixtures/transformers/clip_tokenizer/sd2 --out /tmp/sd21-base-random
    python3 bench/torch/sd_folder.py --tiny --device cpu --tokenizer DIR --out /tmp/sd-tiny --check

Configs: those of stabilityai/stable-diffusion-2-1-base on the Hugging Face Hub (unet/config.json,
vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json), written out below from those
files; keys the files leave out take diffusers' / transformers' defaults, as they do when the real folder is
loaded. Two departures, both as asked for this benchmark: the scheduler is written as DDIMScheduler (the
Hub's file names PNDMScheduler with skip_prk_steps; the schedule numbers, the only part a BOOT teacher reads,
are the same; `--scheduler pndm` writes the Hub's class), and the VAE's sample_size is 512 (the Hub's file
says 768, copied from the 768 model; nothing reads it for training). `--tiny`: the same structure (4 UNet
levels, 3 cross-attention ones, per-block head counts, linear projections, exact GELU, 4 VAE levels) at small
widths, for CPU checks.

Weights: each component's own random initialisation (from_config / constructor), built on `--device` (the
GPU by default: initialising the 866M-parameter UNet on a CPU takes far longer), cast to `--dtype` and saved
as safetensors. Tokenizer: the files of `--tokenizer DIR` (vocab.json, merges.txt, tokenizer_config.json,
special_tokens_map.json, and tokenizer.json if there) are copied into tokenizer/ as they are; model_index.json
names it ["transformers", "CLIPTokenizer"], as save_pretrained does.
"""

import argparse
import json
import os
import shutil
import sys
import time

# stabilityai/stable-diffusion-2-1-base, unet/config.json.
SD21_BASE_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1024,
    # diffusers' historical name: with these values it is the number of heads per block (head size 64).
    "attention_head_dim": [5, 10, 20, 20],
    "dual_cross_attention": False,
    "use_linear_projection": True,
    "class_embed_type": None,
    "num_class_embeds": None,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
}

# stabilityai/stable-diffusion-2-1-base, vae/config.json (scaling_factor: diffusers' default, SD's 0.18215).
SD21_BASE_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

# stabilityai/stable-diffusion-2-1-base, text_encoder/config.json: OpenCLIP ViT-H/14's text tower without its
# last layer (23 of 24; SD 2 takes the penultimate layer's states) as a transformers CLIPTextModel. The token
# ids are the file's (transformers' defaults bos 0, eos 2, pad 1, not the tokenizer's 49406/49407; with
# eos_token_id 2 transformers pools at the argmax id, the end token, and nothing here uses the pooled output).
SD21_BASE_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "projection_dim": 512,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_range": 0.02,
    "initializer_factor": 1.0,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

# stabilityai/stable-diffusion-2-1-base, scheduler/scheduler_config.json (the schedule; the class: see above).
SD21_BASE_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}

# --tiny: the same structure at small widths (latents 4x16x16, pixels 3x128x128).
TINY_UNET = {**SD21_BASE_UNET, "sample_size": 16, "block_out_channels": [32, 32, 64, 64], "attention_head_dim": [2, 2, 4, 4],
             "norm_num_groups": 8, "cross_attention_dim": 32}
TINY_VAE = {**SD21_BASE_VAE, "block_out_channels": [8, 16, 16, 16], "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 128}
TINY_TEXT = {**SD21_BASE_TEXT, "hidden_size": 32, "intermediate_size": 37, "projection_dim": 16, "num_hidden_layers": 2,
             "num_attention_heads": 4}

TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "f32": "float32"}


def configs(tiny):
    """(unet, vae, text_encoder, scheduler) config dicts."""
    if tiny:
        return dict(TINY_UNET), dict(TINY_VAE), dict(TINY_TEXT), dict(SD21_BASE_SCHEDULER)
    return dict(SD21_BASE_UNET), dict(SD21_BASE_VAE), dict(SD21_BASE_TEXT), dict(SD21_BASE_SCHEDULER)


def tokenizer_vocab_size(folder):
    """One more than the largest token id of the tokenizer files (vocab.json, else tokenizer.json)."""
    path = os.path.join(folder, "vocab.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return max(json.load(f).values()) + 1
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        t = json.load(f)
    ids = list(t["model"]["vocab"].values()) + [a["id"] for a in t.get("added_tokens", [])]
    return max(ids) + 1


def count(module):
    return sum(p.numel() for p in module.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the pipeline folder to write (replaced if it exists)")
    ap.add_argument("--tokenizer", required=True, help="a folder with SD 2's CLIP BPE files (vocab.json, merges.txt, ...)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="weights as saved (default bf16)")
    ap.add_argument("--device", help="where the weights are initialised (default: cuda if available, else cpu)")
    ap.add_argument("--scheduler", choices=["ddim", "pndm"], default="ddim", help="the scheduler class written (same schedule)")
    ap.add_argument("--tiny", action="store_true", help="small widths, same structure (CPU checks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="load the folder back with StableDiffusionPipeline.from_pretrained")
    ap.add_argument("--json", help="also write the parameter counts and timings here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    t_import = time.perf_counter() - t0

    missing = [f for f in TOKENIZER_FILES[:2] if not os.path.exists(os.path.join(args.tokenizer, f))]
    if missing and not os.path.exists(os.path.join(args.tokenizer, "tokenizer.json")):
        sys.exit(f"sd_folder.py: {args.tokenizer} has neither {' and '.join(missing)} nor tokenizer.json")
    unet_cfg, vae_cfg, text_cfg, sched_cfg = configs(args.tiny)
    vocab = tokenizer_vocab_size(args.tokenizer)
    if args.tiny:
        text_cfg["vocab_size"] = vocab
    elif vocab > text_cfg["vocab_size"]:
        sys.exit(f"sd_folder.py: the tokenizer has {vocab} ids, the text encoder {text_cfg['vocab_size']}")

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, DTYPES[args.dtype])
    torch.manual_seed(args.seed)
    t1 = time.perf_counter()
    with dev:
        unet = UNet2DConditionModel.from_config(unet_cfg)
        vae = AutoencoderKL.from_config(vae_cfg)
        text = CLIPTextModel(CLIPTextConfig(**text_cfg))
    scheduler = (DDIMScheduler(**sched_cfg) if args.scheduler == "ddim"
                 else PNDMScheduler(skip_prk_steps=True, **{k: v for k, v in sched_cfg.items() if k != "clip_sample"}))
    counts = {"unet": count(unet), "vae": count(vae), "text_encoder": count(text)}
    for m in (unet, vae, text):
        m.eval().to(dtype=dtype).to("cpu")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_build = time.perf_counter() - t1

    t2 = time.perf_counter()
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=None, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(args.out, safe_serialization=True)
    # The tokenizer as the given files, named as save_pretrained names a CLIPTokenizer.
    tok_dir = os.path.join(args.out, "tokenizer")
    os.makedirs(tok_dir, exist_ok=True)
    for f in TOKENIZER_FILES:
        src = os.path.join(args.tokenizer, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(tok_dir, f))
    index_path = os.path.join(args.out, "model_index.json")
    with open(index_path) as f:
        index = json.load(f)
    index["tokenizer"] = ["transformers", "CLIPTokenizer"]
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    t_save = time.perf_counter() - t2
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)

    for name, n in counts.items():
        print(f"sd_folder.py: {name}: {n:,} parameters ({n / 1e6:.1f}M)")
    print(f"sd_folder.py: wrote {args.out} ({'tiny' if args.tiny else 'SD 2.1-base'}, {args.dtype}, {size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - t0:.1f} s (imports {t_import:.1f} s, build on {dev} {t_build:.1f} s, save {t_save:.1f} s)")

    result = {"out": os.path.abspath(args.out), "tiny": args.tiny, "dtype": args.dtype, "device": str(dev), "params": counts,
              "bytes": size, "seconds": {"import": t_import, "build": t_build, "save": t_save, "total": time.perf_counter() - t0},
              "torch": torch.__version__}
    if args.check:
        t3 = time.perf_counter()
        back = StableDiffusionPipeline.from_pretrained(args.out, dtype=dtype)
        got = {"unet": count(back.unet), "vae": count(back.vae), "text_encoder": count(back.text_encoder)}
        assert got == counts, (got, counts)
        ids = back.tokenizer("a photo of a cat", padding="max_length", max_length=back.tokenizer.model_max_length, return_tensors="pt").input_ids
        assert ids.shape == (1, 77) and int(ids.max()) < text_cfg["vocab_size"], ids
        print(f"sd_folder.py: check: StableDiffusionPipeline.from_pretrained loads it ({type(back.tokenizer).__name__}, "
              f"{type(back.scheduler).__name__}; {time.perf_counter() - t3:.1f} s)")
        result["check"] = {"ok": True, "tokenizer": type(back.tokenizer).__name__, "scheduler": type(back.scheduler).__name__}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
