//! The benchmarked configurations: the paper's ImageNet-64 (Table 3) and CIFAR-10 (EDM DDPM++) runs, and
//! tiny ones of the same shape for CPU checks.

use serde::Serialize;
use serde_json::{json, Value};

use crate::arch::{AdmArch, Arch, SongArch};

/// Algorithm 1's and the optimiser's settings (Table 3 / appendix C.4).
#[derive(Debug, Clone, Serialize)]
pub struct TrainSettings {
    /// Bootstrapping step size.
    pub delta: f64,
    /// Smallest time.
    pub t_min: f64,
    /// Largest time.
    pub t_max: f64,
    /// Boundary loss every k steps.
    pub boundary_every: u64,
    /// Boundary loss weight.
    pub boundary_weight: f64,
    /// AdamW learning rate.
    pub lr: f64,
    /// EMA decay.
    pub ema_decay: f64,
}

/// One benchmark configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    /// `imagenet64`, `cifar10`, `tiny`, `tiny-edm`.
    pub name: &'static str,
    /// What it is, in words.
    pub about: &'static str,
    /// The plugin that provides teacher and student.
    pub plugin: &'static str,
    /// The teacher's network.
    pub arch: Arch,
    /// `[student]` config.
    pub student: Value,
    /// `[schedule]` config (`None`: the teacher's native schedule).
    pub schedule: Option<Value>,
    /// `[solver]` config.
    pub solver: Value,
    /// `[guidance]` config.
    pub guidance: Value,
    /// Training settings.
    pub train: TrainSettings,
    /// The paper's batch size (Table 3; over 8 GPUs for ImageNet).
    pub paper_batch: usize,
}

impl Preset {
    /// The `[teacher]` config with `checkpoint` (and for EDM `network`) files in the checkpoint folder.
    pub fn teacher_config(&self) -> Value {
        match &self.arch {
            Arch::Adm(a) => a.teacher_config("teacher.safetensors"),
            Arch::Song(_) => json!({ "kind": "edm", "checkpoint": "teacher.safetensors", "network": "teacher.json" }),
        }
    }

    /// Whether guidance is classifier-free with per-sample `w` (the student is then `w`-conditioned).
    pub fn cfg(&self) -> bool {
        self.guidance.get("kind").and_then(Value::as_str) == Some("cfg")
    }
}

fn imagenet_train() -> TrainSettings {
    TrainSettings { delta: 0.04, t_min: 0.0, t_max: 0.99, boundary_every: 4, boundary_weight: 1.0, lr: 3e-4, ema_decay: 0.9999 }
}

fn cifar_train() -> TrainSettings {
    TrainSettings { delta: 0.04, t_min: 0.0, t_max: 1.0, boundary_every: 4, boundary_weight: 1.0, lr: 1e-4, ema_decay: 0.9999 }
}

fn edm_schedule() -> Value {
    json!({ "kind": "edm", "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0 })
}

/// The names [`preset`] knows.
pub const NAMES: &[&str] = &["imagenet64", "cifar10", "tiny", "tiny-edm"];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<Preset> {
    let cfg = json!({ "kind": "cfg", "w_min": 1.0, "w_max": 5.0 });
    Some(match name {
        // Table 3, ImageNet 64x64 column, as examples/imagenet64.toml: ADM, base 192, mults 1,2,3,4, 2 res
        // blocks, attention at 16 and 8, x0 prediction, cosine schedule, 1000 classes + a null row;
        // Heun targets, CFG with w ~ U[1, 5] and a w-conditioned student; batch 1024 (over 8 A100s).
        "imagenet64" => Preset {
            name: "imagenet64",
            about: "ImageNet 64x64 ADM (paper Table 3), CFG w~U[1,5], Heun",
            plugin: "imagenet",
            arch: Arch::Adm(AdmArch {
                image_size: 64,
                num_channels: 192,
                num_res_blocks: 2,
                channel_mult: vec![1, 2, 3, 4],
                attention_resolutions: vec![16, 8],
                num_head_channels: 64,
                use_scale_shift_norm: true,
                resblock_updown: true,
                use_new_attention_order: true,
                learn_sigma: false,
                num_classes: 1000,
            }),
            student: json!({ "kind": "adm-student" }),
            schedule: None,
            solver: json!({ "kind": "heun" }),
            guidance: cfg,
            train: imagenet_train(),
            paper_batch: 1024,
        },
        // The parity fixture's tiny ADM (tests/fixtures/adm: 16x16, 32 channels, 10 classes), with the
        // ImageNet run's conventions.
        "tiny" => Preset {
            name: "tiny",
            about: "tiny ADM (16x16, 32 channels, 10 classes; the ADM parity fixture's layout), CFG, Heun",
            plugin: "imagenet",
            arch: Arch::Adm(AdmArch {
                image_size: 16,
                num_channels: 32,
                num_res_blocks: 1,
                channel_mult: vec![1, 1],
                attention_resolutions: vec![16, 8],
                num_head_channels: 8,
                use_scale_shift_norm: true,
                resblock_updown: true,
                use_new_attention_order: true,
                learn_sigma: true,
                num_classes: 10,
            }),
            student: json!({ "kind": "adm-student" }),
            schedule: None,
            solver: json!({ "kind": "heun" }),
            guidance: cfg,
            train: imagenet_train(),
            paper_batch: 4,
        },
        // EDM's CIFAR-10 DDPM++ (edm-cifar10-32x32-uncond-vp: VPPrecond around SongUNet, 128 channels, mults
        // 2,2,2, 4 blocks, attention at 16, augment_dim 9), as examples/edm-cifar10.toml: EDM schedule,
        // unguided, Heun; Table 3 batch 128.
        "cifar10" => Preset {
            name: "cifar10",
            about: "CIFAR-10 EDM DDPM++ (VPPrecond SongUNet), unguided, Heun",
            plugin: "edm",
            arch: Arch::Song(SongArch {
                img_resolution: 32,
                model_channels: 128,
                channel_mult: vec![2, 2, 2],
                channel_mult_emb: 4,
                num_blocks: 4,
                attn_resolutions: vec![16],
                augment_dim: 9,
                resample_filter: vec![1.0, 1.0],
                precond: "VPPrecond".into(),
            }),
            student: json!({ "kind": "edm-student", "sigma_max": 80.0 }),
            schedule: Some(edm_schedule()),
            solver: json!({ "kind": "heun" }),
            guidance: json!({ "kind": "none" }),
            train: cifar_train(),
            paper_batch: 128,
        },
        // The EDM parity fixture's tiny SongUNet (16x16, 16 channels, mults 1,2, attention at 8).
        "tiny-edm" => Preset {
            name: "tiny-edm",
            about: "tiny EDM SongUNet (16x16, 16 channels; the EDM parity fixture's layout), VPPrecond, unguided, Heun",
            plugin: "edm",
            arch: Arch::Song(SongArch {
                img_resolution: 16,
                model_channels: 16,
                channel_mult: vec![1, 2],
                channel_mult_emb: 4,
                num_blocks: 1,
                attn_resolutions: vec![8],
                augment_dim: 0,
                resample_filter: vec![1.0, 1.0],
                precond: "VPPrecond".into(),
            }),
            student: json!({ "kind": "edm-student", "sigma_max": 80.0 }),
            schedule: Some(edm_schedule()),
            solver: json!({ "kind": "heun" }),
            guidance: json!({ "kind": "none" }),
            train: cifar_train(),
            paper_batch: 4,
        },
        _ => return None,
    })
}
