#!/usr/bin/env python3
"""PyTorch reference of boot-bench: the same BOOT training step (Algorithm 1 with Heun targets, CFG with
w ~ U[1, 5] and a w-conditioned student for ImageNet, unguided for CIFAR-10, CFG 7.5 on text for Stable
Diffusion, boundary loss every 4 steps, per-sample noise, AdamW, EMA) and the same samplers (one-step
student, teacher DDIM-N), on the same architectures with random weights, in eager mode and with
torch.compile; and the bf16 matmul peak.

    python3 bench/torch/boot_step.py --peak --out peak.json
    python3 bench/torch/boot_step.py --config imagenet64 --batch 256 --dtype bf16 --mode both --out t.json
    python3 bench/torch/boot_step.py --config tiny --device cpu --steps 4 --warmup 1 --out /tmp/t.json
    python3 bench/torch/boot_step.py --config sd21-base --sd-folder /tmp/sd21-base-random --batch 8 --out sd.json
    python3 bench/torch/boot_step.py --config tiny-sd --device cpu --steps 2 --warmup 1 --out /tmp/sd.json

Networks: guided-diffusion's UNetModel (PyPI guided-diffusion-sdk 1.0.0, `import guided_diffusion`) for
ImageNet, a port of EDM's SongUNet (bench/torch/edm_song.py) for CIFAR-10, diffusers' UNet2DConditionModel
for Stable Diffusion 2.1-base (configs in bench/torch/sd_folder.py; `--sd-folder` reads the weights of a
folder that script wrote, as boot-host's `sd` teacher does; plugins/sd). bf16: autocast (bf16 matrix
products and convolutions, f32 master weights, AdamW and EMA), teacher weights in bf16. Timing: CUDA
events around windows of 4 steps (one boundary step each), after warm-up; median. bench/README.md has the
details.
"""

import argparse
import copy
import json
import math
import os
import random
import statistics
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# --------------------------------------------------------------------------------------------------------
# Configurations (bench/src/presets.rs).

ADM_IMAGENET64 = dict(image_size=64, num_channels=192, num_res_blocks=2, channel_mult=(1, 2, 3, 4), attention_resolutions=(16, 8),
                      num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=True,
                      learn_sigma=False, num_classes=1000)
ADM_TINY = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult=(1, 1), attention_resolutions=(16, 8),
                num_head_channels=8, use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=True,
                learn_sigma=True, num_classes=10)
SONG_CIFAR10 = dict(img_resolution=32, model_channels=128, channel_mult=(2, 2, 2), channel_mult_emb=4, num_blocks=4,
                    attn_resolutions=(16,), augment_dim=9, precond="vp")
SONG_TINY = dict(img_resolution=16, model_channels=16, channel_mult=(1, 2), channel_mult_emb=4, num_blocks=1,
                 attn_resolutions=(8,), augment_dim=0, precond="vp")
IMAGENET_TRAIN = dict(delta=0.04, t_min=0.0, t_max=0.99, boundary_every=4, boundary_weight=1.0, lr=3e-4, ema_decay=0.9999)
CIFAR_TRAIN = dict(delta=0.04, t_min=0.0, t_max=1.0, boundary_every=4, boundary_weight=1.0, lr=1e-4, ema_decay=0.9999)
# Stable Diffusion 2.1-base, paper Table 3's SD column and examples/sd21-base.toml: delta 0.01, 1/(delta lambda')^2
# weighting, CFG 7.5 (not w-conditioned), lr 2e-5; batch 64 over 8 GPUs in the paper, 8 on one here. The
# context dataset: a table of `prompts` random text-encoder states [77, 1024] drawn once (the example's
# prompts file has 4096 lines) and a random null row (the empty prompt's states).
SD_TRAIN = dict(delta=0.01, t_min=0.0, t_max=0.99, boundary_every=4, boundary_weight=1.0, lr=2e-5, ema_decay=0.9999,
                loss_weighting="inverse-step")
PRESETS = {
    "imagenet64": dict(family="adm", arch=ADM_IMAGENET64, cfg=True, train=IMAGENET_TRAIN, paper_batch=1024),
    "tiny": dict(family="adm", arch=ADM_TINY, cfg=True, train=IMAGENET_TRAIN, paper_batch=4),
    "cifar10": dict(family="song", arch=SONG_CIFAR10, cfg=False, train=CIFAR_TRAIN, paper_batch=128),
    "tiny-edm": dict(family="song", arch=SONG_TINY, cfg=False, train=CIFAR_TRAIN, paper_batch=4),
    "sd21-base": dict(family="sd", arch="sd21-base", cfg=True, w=7.5, prompts=4096, train=SD_TRAIN, paper_batch=64, batch=8),
    "tiny-sd": dict(family="sd", arch="tiny", cfg=True, w=7.5, prompts=16, train=SD_TRAIN, paper_batch=4, batch=4),
}
W_MIN, W_MAX = 1.0, 5.0

# --------------------------------------------------------------------------------------------------------
# Schedules: per-sample times as float64 arrays (core: Times).


class BetaDiscrete:
    """A discrete teacher's N-step beta schedule as its native schedule: timestep (N - 1) t, lambda = 0.5 log((1 -
    abar) / abar) interpolated linearly between steps (sdk BetaSchedule)."""

    def __init__(self, betas):
        acp = np.cumprod(1 - np.asarray(betas, dtype=np.float64))
        self.lambdas = 0.5 * (np.log(1 - acp) - np.log(acp))
        self.n = len(acp)

    def timestep(self, t):
        return np.clip(t, 0, 1) * (self.n - 1)

    def lam(self, t):
        return np.interp(self.timestep(t), np.arange(self.n), self.lambdas)


class CosineDiscrete(BetaDiscrete):
    """guided-diffusion's 1000-step cosine schedule (the adm teacher's)."""

    def __init__(self, n=1000):
        ab = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
        super().__init__([min(1 - ab((i + 1) / n) / ab(i / n), 0.999) for i in range(n)])


class ScaledLinearDiscrete(BetaDiscrete):
    """diffusers' `scaled_linear` (Stable Diffusion's): betas linear in sqrt(beta) (sdk BetaSchedule::scaled_linear)."""

    def __init__(self, n=1000, beta_start=0.00085, beta_end=0.012):
        super().__init__(np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), n, dtype=np.float64) ** 2)


class EdmSchedule:
    def __init__(self, sigma_min=0.002, sigma_max=80.0, rho=7.0):
        self.a, self.b, self.rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho), rho

    def edm_sigma(self, t):
        return (self.a + t * (self.b - self.a)) ** self.rho

    def lam(self, t):
        return np.log(self.edm_sigma(t))


def upload(rows, device):
    """Host rows (float64 arrays) to one float32 device tensor, in one copy from pinned memory."""
    arr = torch.from_numpy(np.stack([np.asarray(r, dtype=np.float32) for r in rows]))
    if device.type == "cuda":
        return arr.pin_memory().to(device, non_blocking=True)
    return arr


class Times:
    """Per-sample times (core: Times): the schedule's values on the host, and on the device, uploaded in one
    copy, the columns the step needs: alpha, sigma, 1/alpha (`[N, 1, 1, 1]`), the student's and the teacher's
    time inputs (`[N]`: ADM timestep 999 t; EDM sigma/alpha), and `extra` rows (e.g. h, w)."""

    def __init__(self, schedule, t, device, extra=()):
        self.t = np.asarray(t, dtype=np.float64)
        self.lam = schedule.lam(self.t)
        self.alpha = np.sqrt(1 / (1 + np.exp(2 * self.lam)))
        self.sigma = np.sqrt(1 / (1 + np.exp(-2 * self.lam)))
        self.schedule, self.device = schedule, device
        if isinstance(schedule, BetaDiscrete):
            tin_s = tin_t = schedule.timestep(self.t)
        else:
            tin_s, tin_t = np.maximum(self.sigma / self.alpha, 1e-6), np.maximum(self.sigma / self.alpha, 1e-10)
        block = upload([self.alpha, self.sigma, 1 / self.alpha, tin_s, tin_t, *extra], device)
        col = lambda r: r.reshape(-1, 1, 1, 1)
        self.a, self.s, self.inv_a = col(block[0]), col(block[1]), col(block[2])
        self.tin_student, self.tin_teacher = block[3], block[4]
        self.extra = [col(r) for r in block[5:]]

    def noisy(self, y, eps):
        return y * self.a + eps * self.s

    def twice(self):
        """The same times for a batch stacked twice (CFG's conditional and null halves), on the device."""
        d = object.__new__(Times)
        d.a, d.s, d.inv_a = (torch.cat([x, x]) for x in (self.a, self.s, self.inv_a))
        d.tin_student, d.tin_teacher = torch.cat([self.tin_student] * 2), torch.cat([self.tin_teacher] * 2)
        return d


# --------------------------------------------------------------------------------------------------------
# Networks, teachers and students (plugins/imagenet, plugins/edm).


def adm_unet(a, dtype=torch.float32):
    from guided_diffusion.unet import UNetModel
    from guided_diffusion.nn import timestep_embedding

    class UNetExtra(UNetModel):
        """guided-diffusion's UNetModel whose forward also adds a BOOT student's `extra` embedding where
        the class embedding is added (plugins/imagenet's student)."""

        def forward(self, x, timesteps, y=None, extra=None):
            emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
            if self.num_classes is not None:
                emb = emb + self.label_emb(y)
            if extra is not None:
                emb = emb + extra
            hs = []
            h = x.type(self.dtype)
            for module in self.input_blocks:
                h = module(h, emb)
                hs.append(h)
            h = self.middle_block(h, emb)
            for module in self.output_blocks:
                h = torch.cat([h, hs.pop()], dim=1)
                h = module(h, emb)
            h = h.type(x.dtype)
            return self.out(h)

    size = a["image_size"]
    return UNetExtra(
        image_size=size, in_channels=3, model_channels=a["num_channels"], out_channels=6 if a["learn_sigma"] else 3,
        num_res_blocks=a["num_res_blocks"], attention_resolutions=tuple(size // r for r in a["attention_resolutions"]),
        dropout=0.0, channel_mult=a["channel_mult"], num_classes=a["num_classes"] + 1, use_checkpoint=False, use_fp16=False,
        num_heads=4, num_head_channels=a["num_head_channels"], num_heads_upsample=-1, use_scale_shift_norm=a["use_scale_shift_norm"],
        resblock_updown=a["resblock_updown"], use_new_attention_order=a["use_new_attention_order"])


def song_precond(a):
    from edm_song import Precond, SongUNet
    net = SongUNet(img_resolution=a["img_resolution"], in_channels=3, out_channels=3, augment_dim=a["augment_dim"],
                   model_channels=a["model_channels"], channel_mult=a["channel_mult"], channel_mult_emb=a["channel_mult_emb"],
                   num_blocks=a["num_blocks"], attn_resolutions=a["attn_resolutions"], dropout=0.13)
    return Precond(a["precond"], net)


def randomize(module, seed):
    """The weights of the Rust bench's checkpoints, in distribution (bench/src/weights.rs): conv / linear
    weights N(0,1)/sqrt(fan_in), biases 0.05 N(0,1), norm scales 1 + 0.1 N, norm shifts 0.1 N, embedding
    tables N(0,1). Nothing is zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in module.named_modules():
            kind = type(m).__name__
            for pname, p in m.named_parameters(recurse=False):
                r = torch.randn(p.shape, generator=g)
                if "Norm" in kind:
                    v = 1 + 0.1 * r if pname == "weight" else 0.1 * r
                elif kind == "Embedding":
                    v = r
                elif pname == "weight":
                    v = r / math.sqrt(max(p[0].numel(), 1))
                else:
                    v = 0.05 * r
                p.copy_(v)


class AdmTeacher(torch.nn.Module):
    """plugins/imagenet's `adm` teacher, x0 prediction: f(x_t, t, c) = UNet(x_t, 999 t, c)[:3]."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, timesteps, labels):
        return self.unet(x, timesteps, labels)[:, :3].float()


class AdmStudent(torch.nn.Module):
    """plugins/imagenet's `adm-student`: the teacher's network at its timestep of t_max, plus zero-initialised
    embeddings of the target timestep and of w added to the class embedding."""

    def __init__(self, unet, s_max, w_conditioned):
        super().__init__()
        self.unet, self.s_max = unet, s_max
        mc = unet.model_channels
        self.time_embed = torch.nn.Linear(mc, 4 * mc)
        self.w_embed = torch.nn.Linear(mc, 4 * mc) if w_conditioned else None
        for lin in (self.time_embed, self.w_embed):
            if lin is not None:
                torch.nn.init.zeros_(lin.weight)
                torch.nn.init.zeros_(lin.bias)

    def forward(self, eps, timesteps, labels, w):
        from guided_diffusion.nn import timestep_embedding
        mc = self.unet.model_channels
        extra = self.time_embed(timestep_embedding(timesteps, mc))
        if self.w_embed is not None:
            extra = extra + self.w_embed(timestep_embedding(w, mc))
        s = torch.full_like(timesteps, self.s_max)
        return self.unet(eps, s, labels, extra)[:, :3].float()


class EdmTeacher(torch.nn.Module):
    """plugins/edm's `edm` teacher: D(x_t / alpha; sigma / alpha)."""

    def __init__(self, precond):
        super().__init__()
        self.precond = precond

    def forward(self, x, sigma_edm):
        return self.precond(x, sigma_edm).float()


class EdmStudent(torch.nn.Module):
    """plugins/edm's `edm-student`: D(eps sqrt(1 + sigma_max^2); sigma_max, extra = map_time(map_noise(c_noise(sigma_t))))."""

    def __init__(self, precond, sigma_max):
        super().__init__()
        self.precond, self.sigma_max = precond, sigma_max
        c = precond.model.noise_channels
        self.map_time = torch.nn.Linear(c, c)
        torch.nn.init.zeros_(self.map_time.weight)
        torch.nn.init.zeros_(self.map_time.bias)

    def forward(self, eps, sigma_t):
        _, _, _, c_noise = self.precond.coefficients(sigma_t.float().reshape(-1, 1, 1, 1))
        extra = self.map_time(self.precond.model.embed_noise(c_noise.flatten()))
        x = eps * math.sqrt(1 + self.sigma_max ** 2)
        return self.precond(x, torch.full_like(sigma_t, self.sigma_max), extra=extra).float()


def sd_unet(config, device, **override):
    """diffusers' UNet2DConditionModel of `config` (a dict), built (and randomly initialised) on `device`, f32."""
    from diffusers import UNet2DConditionModel
    with device:
        return UNet2DConditionModel.from_config(dict(config), **override)


def sd_teacher_unet(arch, device, folder=None):
    """The teacher's UNet and the scheduler config: from `folder` (a StableDiffusionPipeline folder: unet/config.json
    and its safetensors weights, scheduler/scheduler_config.json), else the preset's configs (sd_folder.py)
    with random weights."""
    import sd_folder
    unet_cfg, _, _, sched = sd_folder.configs(arch == "tiny")
    if folder is None:
        return sd_unet(unet_cfg, device), sched
    from safetensors.torch import load_file
    with open(os.path.join(folder, "unet", "config.json")) as f:
        unet_cfg = json.load(f)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json")) as f:
        sched = json.load(f)
    if sched.get("beta_schedule") != "scaled_linear" or sched.get("prediction_type", "epsilon") != "epsilon":
        raise SystemExit(f"boot_step.py: {folder}: this reference takes scaled_linear epsilon-prediction teachers, not "
                         f"{sched.get('beta_schedule')} / {sched.get('prediction_type')}")
    net = sd_unet(unet_cfg, device)
    unet_dir = os.path.join(folder, "unet")
    files = [f for f in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
             if os.path.exists(os.path.join(unet_dir, f))]
    if not files:
        raise SystemExit(f"boot_step.py: {unet_dir}: no diffusion_pytorch_model[.fp16].safetensors")
    dev = str(device) if device.type == "cuda" else "cpu"
    net.load_state_dict(load_file(os.path.join(unet_dir, files[0]), device=dev))
    return net, sched


class SdTeacher(torch.nn.Module):
    """plugins/sd's `sd` teacher network: the UNet's noise prediction at (fractional) timestep 999 t on text
    states `ctx` ([N, 77, D]); Setup.teacher_f turns it into x0 = (x_t - sigma eps) / alpha."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, timesteps, ctx):
        return self.unet(x, timesteps, encoder_hidden_states=ctx).sample.float()


class SdStudent(torch.nn.Module):
    """plugins/sd's `sd-student`: the teacher's UNet at its timestep of t_max (s_max) with the noise as its input,
    plus a zero-initialised Linear(320 -> 1280) of the target timestep's sinusoidal features (the UNet's own
    time_proj) added to the time embedding (the UNet is built with class_embed_type "identity", which adds
    `class_labels` there and holds no weights); its noise prediction becomes y = (eps - sigma_max out) / alpha_max,
    as the teacher's would at s_max. CFG's w is fixed, so there is no w embedding."""

    def __init__(self, unet, s_max, alpha_max, sigma_max):
        super().__init__()
        self.unet, self.s_max, self.alpha_max, self.sigma_max = unet, s_max, alpha_max, sigma_max
        c = unet.config.block_out_channels[0]
        self.time_embed = torch.nn.Linear(c, unet.time_embedding.linear_1.out_features)
        torch.nn.init.zeros_(self.time_embed.weight)
        torch.nn.init.zeros_(self.time_embed.bias)

    def forward(self, eps, timesteps, ctx):
        extra = self.time_embed(self.unet.time_proj(timesteps))
        s = torch.full_like(timesteps, self.s_max)
        out = self.unet(eps, s, encoder_hidden_states=ctx, class_labels=extra).sample.float()
        return (eps - self.sigma_max * out) * (1 / self.alpha_max)


class Setup:
    """Teacher, student, EMA student, schedule and the per-sample inputs of one configuration."""

    def __init__(self, preset, device, dtype, seed, weights=None, sd_folder=None):
        """`weights`: a state dict for the teacher (boot-bench --dump's checkpoint) instead of random weights;
        `sd_folder`: a Stable Diffusion folder whose UNet weights and schedule the sd family's teacher takes."""
        self.p, self.device, self.seed = preset, device, seed
        self.cfg, self.train = preset["cfg"], preset["train"]
        self.bf16 = dtype == "bf16"
        a = preset["arch"]
        if preset["family"] == "adm":
            self.schedule = CosineDiscrete()
            self.shape = (3, a["image_size"], a["image_size"])
            self.num_classes = a["num_classes"]
            tnet = adm_unet(a)
            randomize(tnet, seed) if weights is None else tnet.load_state_dict(weights)
            snet = adm_unet(a)
            snet.load_state_dict(tnet.state_dict())
            s_max = float(self.schedule.timestep(self.train["t_max"]))
            self.teacher = AdmTeacher(tnet)
            self.student = AdmStudent(snet, s_max, self.cfg)
            self.ema = AdmStudent(adm_unet(a), s_max, self.cfg)
        elif preset["family"] == "sd":
            torch.manual_seed(seed)
            tnet, sched = sd_teacher_unet(a, device, sd_folder)
            self.schedule = ScaledLinearDiscrete(sched["num_train_timesteps"], sched["beta_start"], sched["beta_end"])
            c = tnet.config
            self.shape = (c.in_channels, c.sample_size, c.sample_size)
            self.sd_config = dict(c)
            # The prompt table (index `prompts`: the null condition), drawn once, kept in the compute dtype.
            self.num_classes = preset["prompts"]
            g = torch.Generator(device=device).manual_seed(seed + 1)
            self.table = torch.randn((self.num_classes + 1, 77, c.cross_attention_dim), generator=g, device=device)
            if self.bf16:
                self.table = self.table.to(torch.bfloat16)
            snet = sd_unet(c, device, class_embed_type="identity")
            snet.load_state_dict(tnet.state_dict())
            t_max = self.train["t_max"]
            lam_max = float(self.schedule.lam(t_max))
            s_max = float(self.schedule.timestep(t_max))
            self.teacher = SdTeacher(tnet)
            self.student = SdStudent(snet, s_max, math.sqrt(1 / (1 + math.exp(2 * lam_max))), math.sqrt(1 / (1 + math.exp(-2 * lam_max))))
            self.ema = copy.deepcopy(self.student)
        else:
            self.schedule = EdmSchedule()
            self.shape = (3, a["img_resolution"], a["img_resolution"])
            self.num_classes = 0
            tnet = song_precond(a)
            randomize(tnet, seed) if weights is None else tnet.load_state_dict(weights)
            snet = song_precond(a)
            snet.load_state_dict(tnet.state_dict())
            self.teacher = EdmTeacher(tnet)
            self.student = EdmStudent(snet, 80.0)
            self.ema = EdmStudent(song_precond(a), 80.0)
        self.teacher.to(device).requires_grad_(False).eval()
        if self.bf16:
            self.teacher.to(torch.bfloat16)
        self.student.to(device).train()
        self.ema.to(device).requires_grad_(False)
        self.ema.load_state_dict(self.student.state_dict())
        self.params = [p for p in self.student.parameters() if p.requires_grad]
        self.ema_params = [q for q, p in zip(self.ema.parameters(), self.student.parameters()) if p.requires_grad]
        fused = device.type == "cuda"
        self.optim = torch.optim.AdamW(self.params, lr=self.train["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=fused)
        self.student_fn, self.teacher_fn, self.ema_fn = self.student, self.teacher, self.ema

    def compile(self):
        self.student_fn = torch.compile(self.student)
        self.teacher_fn = torch.compile(self.teacher)
        # The one-step sampler is timed on the live student (compiled already; the EMA copy costs the same
        # and would be one more compilation).
        self.ema_fn = self.student_fn

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # Per-sample inputs: one generator per sample index (core: sdk::rng), so samples do not depend on the batch.
    def sample_seed(self, stream, step, i):
        return hash((self.seed, stream, step, i)) & 0x7FFF_FFFF_FFFF_FFFF

    def inputs(self, step, n):
        g = torch.Generator(device=self.device)
        eps = torch.empty((n,) + self.shape, device=self.device)
        for i in range(n):
            g.manual_seed(self.sample_seed(1, step, i))
            eps[i] = torch.randn(self.shape, generator=g, device=self.device)
        u = np.array([random.Random(self.sample_seed(2, step, i)).random() for i in range(n)])
        labels = None
        if self.num_classes:
            labels = torch.tensor([random.Random(self.sample_seed(3, step, i)).randrange(self.num_classes) for i in range(n)])
            labels = labels.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else labels
        w = None
        if self.cfg and self.p.get("w") is not None:
            w = np.full(n, float(self.p["w"]))
        elif self.cfg:
            w = np.array([W_MIN + (W_MAX - W_MIN) * random.Random(self.sample_seed(4, step, i)).random() for i in range(n)])
        return eps, u, labels, w

    # The contract of core: student y(eps, t, c, w), guided teacher f~(x, t, c, w). `w` is a [N] device vector.
    def student_y(self, fn, eps, T, labels, w):
        with self.autocast():
            if isinstance(self.student, AdmStudent):
                return fn(eps, T.tin_student, labels, w)
            if isinstance(self.student, SdStudent):
                return fn(eps, T.tin_student, self.table[labels])
            return fn(eps, T.tin_student)

    def teacher_f(self, x, T, labels):
        with self.autocast():
            if isinstance(self.teacher, AdmTeacher):
                return self.teacher_fn(x, T.tin_teacher, labels)
            if isinstance(self.teacher, SdTeacher):
                return (x - T.s * self.teacher_fn(x, T.tin_teacher, self.table[labels])) * T.inv_a
            return self.teacher_fn(x * T.inv_a, T.tin_teacher)

    def guided(self, x, T, labels, w):
        if not self.cfg:
            return self.teacher_f(x, T, labels)
        b = x.shape[0]
        null = torch.full_like(labels, self.num_classes)
        f = self.teacher_f(torch.cat([x, x]), T.twice(), torch.cat([labels, null]))
        f_c, f_n = f[:b], f[b:]
        return f_n + (f_c - f_n) * w.reshape(-1, 1, 1, 1)

    def boot_loss(self, step, batch):
        """Algorithm 1 with Heun's target (Eq. 15), as boot_core::boot::boot_loss; loss_weighting "inverse-step":
        per-sample weights 1 / (delta lambda')^2 = 1 / h^2."""
        eps, u, labels, w = batch
        tr = self.train
        t = tr["t_max"] - u * (tr["t_max"] - tr["t_min"])
        s = np.maximum(t - tr["delta"], tr["t_min"])
        S = Times(self.schedule, s, self.device)
        h = -np.expm1(S.lam - self.schedule.lam(t))
        inverse_step = tr.get("loss_weighting", "uniform") == "inverse-step"
        extra = [h] + ([w] if w is not None else []) + ([1 / np.maximum(h * h, 1e-12)] if inverse_step else [])
        T = Times(self.schedule, t, self.device, extra=extra)
        h = T.extra[0]
        weights = T.extra[-1].flatten() if inverse_step else None
        w = T.extra[1].flatten() if w is not None else None
        with torch.no_grad():
            y_t = self.student_y(self.student_fn, eps, T, labels, w)
        y_s = self.student_y(self.student_fn, eps, S, labels, w)
        with torch.no_grad():
            f_t = self.guided(T.noisy(y_t, eps), T, labels, w)
            y_pred = y_t + (f_t - y_t) * h
            f_s = self.guided(S.noisy(y_pred, eps), S, labels, w)
            target = y_t + ((f_t - y_t) + (f_s - y_pred)) * (0.5 * h)
        per_sample = (y_s - target).square().flatten(1).mean(1)
        loss = (per_sample * weights).mean() if inverse_step else per_sample.mean()
        k = tr["boundary_every"]
        if k and step % k == 0:
            Tm = Times(self.schedule, np.full(len(t), tr["t_max"]), self.device)
            y_max = self.student_y(self.student_fn, eps, Tm, labels, w)
            with torch.no_grad():
                f_max = self.guided(eps, Tm, labels, w)
            loss = loss + tr["boundary_weight"] * (y_max - f_max).square().flatten(1).mean(1).mean()
        return loss

    def train_step(self, step, n):
        batch = self.inputs(step, n)
        loss = self.boot_loss(step, batch)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])  # core logs it
        self.optim.step()
        torch._foreach_lerp_(self.ema_params, self.params, 1 - self.train["ema_decay"])
        del grad_norm
        return loss.item()  # core reads the loss every step (finite check)

    # Samplers (core: samplers.rs).
    def w_vec(self, w):
        return None if w is None else upload([w], self.device)[0]

    def student_sample(self, eps, labels, w):
        T = Times(self.schedule, np.full(eps.shape[0], self.train["t_min"]), self.device)
        with torch.no_grad():
            return self.student_y(self.ema_fn, eps, T, labels, self.w_vec(w))

    def ddim(self, eps, labels, w, n_steps):
        tmax, tmin = self.train["t_max"], self.train["t_min"]
        grid = [tmax - i * (tmax - tmin) / n_steps for i in range(n_steps)]
        b = eps.shape[0]
        x, wv = eps, self.w_vec(w)
        with torch.no_grad():
            for i, t in enumerate(grid):
                T = Times(self.schedule, np.full(b, t), self.device)
                f = self.guided(x, T, labels, wv)
                if i + 1 == len(grid):
                    x = f
                else:
                    s = grid[i + 1]
                    lam = self.schedule.lam(np.array([t, s]))
                    a_t, a_s = np.sqrt(1 / (1 + np.exp(2 * lam)))
                    s_t, s_s = np.sqrt(1 / (1 + np.exp(-2 * lam)))
                    x = x * float(s_s / s_t) + f * float(a_s - a_t * s_s / s_t)
        return x


# --------------------------------------------------------------------------------------------------------
# Measurement.


class MemPoll:
    """Device-wide used memory (cudaMemGetInfo: total - free), polled every 10 ms in a thread, as boot-bench's
    cuMemGetInfo poller; plus the caching allocator's own peaks."""

    def __init__(self, device):
        self.device, self.peak, self.stop = device, 0, False
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.thread = threading.Thread(target=self.run, daemon=True)
            self.thread.start()

    def used(self):
        free, total = torch.cuda.mem_get_info(self.device)
        return total - free

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, self.used())
            time.sleep(0.01)

    def reset(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.peak = self.used()

    def report(self):
        if not self.cuda:
            return {"method": "not measured on CPU"}
        mib = 1 / 2 ** 20
        return {"method": "cudaMemGetInfo (total - free) polled every 10 ms: device-wide used memory",
                "peak_mib": self.peak * mib,
                "torch_max_allocated_mib": torch.cuda.max_memory_allocated(self.device) * mib,
                "torch_max_reserved_mib": torch.cuda.max_memory_reserved(self.device) * mib}


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.device = device

    def __enter__(self):
        if self.cuda:
            self.a, self.b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.a.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.b.record()
            self.b.synchronize()
            self.s = self.a.elapsed_time(self.b) / 1e3
        else:
            self.s = time.perf_counter() - self.t0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_flops(setup, n=1):
    """Per-sample forward FLOPs of teacher and student from torch's FlopCounterMode (conv, mm, bmm: 2 per
    multiply-add), at batch `n`, eager."""
    from torch.utils.flop_counter import FlopCounterMode
    eps, u, labels, w = setup.inputs(10**9, n)
    T = Times(setup.schedule, np.full(n, 0.5), setup.device)
    out = {}
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            setup.teacher_f(eps, T, labels)
        out["teacher"] = fc.get_total_flops() / n
        with FlopCounterMode(display=False) as fc:
            setup.student_y(setup.student, eps, T, labels, setup.w_vec(w))
        out["student"] = fc.get_total_flops() / n
    return out


def is_oom(e):
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def bench_mode(setup, args, mode, batch, min_batch, deadline, flops, publish=lambda out: None):
    """Warm-up and timed windows of k steps at `batch` (halved on out-of-memory down to `min_batch`), then
    inference. Returns the mode's result dict."""
    dev, k = setup.device, setup.train["boundary_every"]
    mem = MemPoll(dev)
    tried, out = [], {}
    t_mode = time.perf_counter()
    if mode == "compile":
        setup.compile()
    while True:
        tried.append({"batch": batch})
        mem.reset()
        try:
            losses, windows, step = [], [], 0
            t0 = time.perf_counter()
            with Timer(dev) as first:
                losses.append(setup.train_step(step, batch))
            step += 1
            for _ in range(max(args.warmup, 1) - 1):
                if time.perf_counter() > t0 + 0.35 * max(deadline - t0, 0):
                    break
                losses.append(setup.train_step(step, batch))
                step += 1
            warm = step
            warm_wall = time.perf_counter() - t0
            timed = -(-args.steps // k) * k
            stopped = False
            while len(windows) * k < timed:
                # BOOT_BENCH_PROFILE=1: the first window only, for `ncu --profile-from-start off`.
                profile = os.environ.get("BOOT_BENCH_PROFILE") == "1" and not windows and dev.type == "cuda"
                if profile:
                    torch.cuda.synchronize()
                    torch.cuda.profiler.start()
                with Timer(dev) as tw:
                    for _ in range(k):
                        losses.append(setup.train_step(step, batch))
                        step += 1
                if profile:
                    torch.cuda.synchronize()
                    torch.cuda.profiler.stop()
                windows.append(tw.s / k)
                if len(windows) * k < timed and time.perf_counter() > t0 + 0.75 * max(deadline - t0, 0):
                    stopped = True
                    break
            break
        except Exception as e:  # noqa: BLE001 - out-of-memory comes in several types
            if not is_oom(e) or batch // 2 < min_batch:
                raise
            print(f"boot_step.py: {mode}: batch {batch}: out of memory; trying {batch // 2}", file=sys.stderr, flush=True)
            tried[-1]["oom"] = True
            setup.optim.zero_grad(set_to_none=True)
            batch //= 2
            import gc
            gc.collect()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    train_mem = mem.report()
    step_s = statistics.median(windows)
    g = 2 if setup.cfg else 1
    f_s, f_t = flops["student"], flops["teacher"]
    per_sample_step = ((1 + 3) * f_s * k + 3 * f_s + g * (2 * k + 1) * f_t) / k
    achieved = batch * per_sample_step / step_s / 1e12
    out.update({
        "mode": mode, "batch": batch, "batches_tried": tried, "warmup_steps": warm, "first_step_s": first.s,
        # Warm-up's wall time beyond `warmup_steps` steady steps: in compile mode, about the compilation time.
        "warmup_wall_s": warm_wall, "warmup_excess_s": warm_wall - warm * statistics.median(windows),
        "timed_steps": len(windows) * k, "stopped_early_by_budget": stopped,
        "train": {"step_s_median": step_s, "window_step_s": windows, "steps_per_s": 1 / step_s, "samples_per_s": batch / step_s,
                  "losses": losses, "losses_finite": all(math.isfinite(x) for x in losses)},
        "flops": {"per_sample_step": per_sample_step, "per_step": batch * per_sample_step, "achieved_tflops": achieved,
                  "peak_tflops": args.peak_tflops, "mfu": achieved / args.peak_tflops if args.peak_tflops else None},
        "memory": train_mem,
    })
    publish(out)  # the training numbers survive a run cut short during inference
    print(f"boot_step.py: {mode}: batch {batch}: {step_s:.3f} s/step, {batch / step_s:.2f} samples/s, {achieved:.1f} TFLOP/s, "
          f"peak {train_mem.get('peak_mib', float('nan')):.0f} MiB (first step {first.s:.1f} s)", file=sys.stderr, flush=True)

    if not args.no_infer:
        n = args.infer_batch or batch
        mem.reset()
        eps, _, labels, w = setup.inputs(2**40, n)
        setup.student_sample(eps, labels, w)
        reps = []
        for _ in range(max(args.infer_reps, 1)):
            with Timer(dev) as tm:
                setup.student_sample(eps, labels, w)
            reps.append(tm.s)
        with Timer(dev) as one:
            setup.ddim(eps, labels, w, 1)
        if os.environ.get("BOOT_BENCH_PROFILE") == "ddim1" and dev.type == "cuda":
            # One more DDIM step (one guided teacher evaluation) for `ncu --profile-from-start off`.
            torch.cuda.synchronize()
            torch.cuda.profiler.start()
            setup.ddim(eps, labels, w, 1)
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()
        left = deadline - time.perf_counter()
        steps_run = args.ddim_steps if left > one.s * args.ddim_steps else max(2, min(args.ddim_steps, int(left / max(one.s, 1e-9))))
        with Timer(dev) as dd:
            setup.ddim(eps, labels, w, steps_run)
        ddim_s = dd.s * args.ddim_steps / steps_run
        student_s = statistics.median(reps)
        out["inference"] = {
            "batch": n,
            "student_one_step": {"median_s": student_s, "reps": reps, "images_per_s": n / student_s, "tflops": n * f_s / student_s / 1e12},
            "teacher_ddim": {"steps": args.ddim_steps, "steps_timed": steps_run, "extrapolated": steps_run != args.ddim_steps,
                             "seconds": ddim_s, "images_per_s": n / ddim_s, "network_passes_per_step": g,
                             "tflops": n * args.ddim_steps * g * f_t / ddim_s / 1e12},
            "memory": mem.report(),
        }
        print(f"boot_step.py: {mode}: inference batch {n}: student {n / student_s:.1f} images/s, teacher DDIM-{args.ddim_steps} "
              f"{n / ddim_s:.2f} images/s", file=sys.stderr, flush=True)
    mem.stop = True
    out["wall_s"] = time.perf_counter() - t_mode
    return out, batch


def peak_matmul(args):
    dev = torch.device(args.device)
    n = args.peak_n
    dtype = torch.bfloat16
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b)
    sync(dev)
    times = []
    for _ in range(args.peak_reps):
        with Timer(dev) as t:
            torch.matmul(a, b)
        times.append(t.s)
    s = statistics.median(times)
    tflops = 2 * n ** 3 / s / 1e12
    print(f"boot_step.py: bf16 {n}^3 matmul: {s * 1e3:.3f} ms, {tflops:.1f} TFLOP/s", file=sys.stderr, flush=True)
    return {"schema": "boot-bench-peak/1", "device": device_info(dev), "dtype": "bf16", "n": n, "reps": args.peak_reps,
            "median_s": s, "times_s": times, "tflops": tflops, "torch": torch.__version__}


def check(args):
    """Recomputes core's step-0 loss (boot-bench --dump DIR) with this script's step on the same weights and
    inputs, in f32, and compares."""
    from safetensors.torch import load_file
    d = args.check
    with open(os.path.join(d, "loss.json")) as f:
        ref = json.load(f)
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    setup = Setup(PRESETS[ref["config"]], dev, "f32", ref["seed"], weights=load_file(os.path.join(d, "teacher.safetensors")))
    x = load_file(os.path.join(d, "inputs.safetensors"))
    eps = x["eps"].to(dev)
    u = x["u"].double().numpy()
    labels = x["labels"].to(dev) if "labels" in x else None
    w = x["w"].double().numpy() if "w" in x else None
    total = setup.boot_loss(0, (eps, u, labels, w)).item()
    bootstrap = setup.boot_loss(1, (eps, u, labels, w)).item()
    rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)
    res = {"config": ref["config"], "batch": ref["batch"], "boot": ref, "torch": {"loss_total": total, "loss_bootstrap": bootstrap,
           "loss_boundary": total - bootstrap}, "rel_err_total": rel(total, ref["loss_total"]),
           "rel_err_bootstrap": rel(bootstrap, ref["loss_bootstrap"])}
    ok = res["rel_err_total"] < args.check_tol and res["rel_err_bootstrap"] < args.check_tol
    res["ok"] = ok
    print(f"boot_step.py: check {ref['config']} batch {ref['batch']}: core's step-0 loss {ref['loss_total']:.7g}, torch {total:.7g}, "
          f"relative difference {res['rel_err_total']:.1e} ({'ok' if ok else 'MISMATCH'})", file=sys.stderr, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    sys.exit(0 if ok else 1)


def device_info(dev):
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        return {"spec": str(dev), "name": p.name, "total_memory_mib": p.total_memory / 2 ** 20, "sms": p.multi_processor_count}
    return {"spec": "cpu", "name": f"cpu ({os.cpu_count()} threads)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=sorted(PRESETS))
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--min-batch", type=int)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="bf16")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in f32 matmuls and convolutions")
    ap.add_argument("--mode", choices=["eager", "compile", "both"], default="both")
    ap.add_argument("--peak-tflops", type=float)
    ap.add_argument("--infer-batch", type=int)
    ap.add_argument("--infer-reps", type=int, default=5)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--no-infer", action="store_true")
    ap.add_argument("--time-budget", type=float, default=0, help="seconds for everything after setup (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak", action="store_true", help="measure the bf16 matmul peak instead")
    ap.add_argument("--peak-n", type=int, default=8192)
    ap.add_argument("--peak-reps", type=int, default=20)
    ap.add_argument("--out")
    ap.add_argument("--check", help="a boot-bench --dump folder: recompute core's step-0 loss on its weights and inputs")
    ap.add_argument("--check-tol", type=float, default=1e-4)
    ap.add_argument("--label")
    ap.add_argument("--merge", action="store_true", help="add this run's modes to an existing --out file")
    ap.add_argument("--sd-folder", help="sd configs: the StableDiffusionPipeline folder (bench/torch/sd_folder.py's) whose UNet "
                    "weights and schedule the teacher takes (default: the preset's configs, random weights)")
    args = ap.parse_args()
    if args.check:
        check(args)
    if not args.out:
        ap.error("--out is required")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.peak:
        result = peak_matmul(args)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        return
    if not args.config:
        ap.error("--config is required (or --peak)")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    preset = PRESETS[args.config]
    t0 = time.perf_counter()
    setup = Setup(preset, dev, args.dtype, args.seed, sd_folder=args.sd_folder)
    flops = forward_flops(setup)
    build_s = time.perf_counter() - t0
    n_teacher = sum(p.numel() for p in setup.teacher.parameters())
    n_student = sum(p.numel() for p in setup.params)
    print(f"boot_step.py: {args.config} on {device_info(dev)['name']}, {args.dtype}: teacher {n_teacher / 1e6:.2f}M, student "
          f"{n_student / 1e6:.2f}M parameters; forward {flops['teacher'] / 1e9:.2f} GFLOP/sample (teacher)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    budget = args.time_budget if args.time_budget > 0 else float("inf")
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    batch = args.batch or preset.get("batch", preset["paper_batch"])
    min_batch = args.min_batch or batch
    results = {}
    if args.merge and os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f).get("modes", {})
    result = {
        "schema": "boot-bench/1", "engine": "torch", "engine_detail": f"torch {torch.__version__}",
        "label": args.label, "device": device_info(dev), "config": args.config, "arch": preset["arch"], "family": preset["family"],
        "train_settings": preset["train"], "cfg": preset["cfg"], "dtype": args.dtype, "tf32": args.tf32,
        "precision": "autocast bf16 (teacher weights bf16; student f32 master weights, fused AdamW, EMA)" if args.dtype == "bf16" else "f32",
        "params": {"teacher": n_teacher, "student": n_student},
        "flops": {"counting": "torch.utils.flop_counter (conv, mm, bmm; 2 per multiply-add), batch-1 eager forward; backward = 2x forward",
                  "forward_per_sample_teacher": flops["teacher"], "forward_per_sample_student": flops["student"]},
        "paper_batch": preset["paper_batch"], "build_s": build_s, "modes": results,
    }
    if preset["family"] == "sd":
        result.update({"sd_folder": os.path.abspath(args.sd_folder) if args.sd_folder else None, "unet_config": setup.sd_config,
                       "guidance_w": preset["w"], "prompt_table": [preset["prompts"] + 1, 77, setup.sd_config["cross_attention_dim"]],
                       "student_timestep": setup.student.s_max})

    def write():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    for i, mode in enumerate(modes):
        # Each mode gets an equal share of what is left of the budget.
        now = time.perf_counter()
        deadline = now + (budget - (now - start)) / (len(modes) - i)
        try:
            def publish(out, mode=mode):
                results[mode] = out
                write()
            results[mode], batch = bench_mode(setup, args, mode, batch, min(min_batch, batch), deadline, flops, publish)
        except Exception as e:  # noqa: BLE001 - keep the other mode's numbers
            print(f"boot_step.py: {mode} failed: {type(e).__name__}: {str(e)[:500]}", file=sys.stderr, flush=True)
            results[mode] = {"mode": mode, "error": f"{type(e).__name__}: {str(e)[:2000]}"}
        write()
    write()
    print(f"boot_step.py: wrote {args.out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
