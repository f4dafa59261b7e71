//! The benchmarked configurations: the repository's example configs (`examples/*.toml`), read through
//! boot-host's config and plugin loader, with the teacher's checkpoint pointed at the random-weight one the
//! benchmark writes, and the networks those checkpoints are written for.

use std::path::{Path, PathBuf};

use boot_core::components::RunContext;
use boot_core::config::RunConfig;
use boot_host::config_loader::{load_run, RawConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::arch::{AdmArch, Arch, SongArch};

/// A benchmark configuration before it is read.
pub struct PresetSpec {
    /// `imagenet64`, `cifar10`, `tiny`, `tiny-edm`.
    pub name: &'static str,
    /// What it is, in words.
    pub about: &'static str,
    /// The example config it runs, in `examples/`.
    pub example: &'static str,
    /// EDM: the network the benchmark writes as the converter's JSON (`teacher.network`). ADM: `None`, the
    /// network is read from the example's `[teacher]` keys.
    pub song: Option<SongArch>,
}

/// The names [`spec`] knows.
pub const NAMES: &[&str] = &["imagenet64", "cifar10", "tiny", "tiny-edm"];

/// The folder of the example configs (this checkout's `examples/`).
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("examples")
}

/// The preset called `name`.
pub fn spec(name: &str) -> Option<PresetSpec> {
    Some(match name {
        // Table 3, ImageNet 64x64 column: ADM base 192, mults 1,2,3,4, 2 res blocks, attention at 16 and 8,
        // x0 prediction, cosine schedule, 1000 classes + a null row; Heun, CFG w ~ U[1, 5], batch 1024.
        "imagenet64" => PresetSpec { name: "imagenet64", about: "ImageNet 64x64 ADM (paper Table 3), CFG w~U[1,5], Heun", example: "imagenet64.toml", song: None },
        // The ADM parity fixture's tiny layout (16x16, 32 channels, 10 classes) with CFG.
        "tiny" => PresetSpec {
            name: "tiny",
            about: "tiny ADM (16x16, 32 channels, 10 classes; the ADM parity fixture's layout), CFG, Heun",
            example: "imagenet-tiny.toml",
            song: None,
        },
        // EDM's CIFAR-10 DDPM++ (edm-cifar10-32x32-uncond-vp: VPPrecond around SongUNet, 128 channels, mults
        // 2,2,2, 4 blocks, attention at 16, augment_dim 9): EDM schedule, unguided, Heun; batch 128.
        "cifar10" => PresetSpec {
            name: "cifar10",
            about: "CIFAR-10 EDM DDPM++ (VPPrecond SongUNet), unguided, Heun",
            example: "edm-cifar10.toml",
            song: Some(SongArch {
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
        },
        // The EDM parity fixture's tiny SongUNet (16x16, 16 channels, mults 1,2, attention at 8), VPPrecond.
        "tiny-edm" => PresetSpec {
            name: "tiny-edm",
            about: "tiny EDM SongUNet (16x16, 16 channels; the EDM parity fixture's layout), VPPrecond, unguided, Heun",
            example: "edm-tiny.toml",
            song: Some(SongArch {
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
        },
        _ => return None,
    })
}

/// A benchmark configuration, read.
pub struct Preset {
    /// Name and example.
    pub spec: PresetSpec,
    /// The teacher's network (the random checkpoint's tensors, the FLOP count).
    pub arch: Arch,
    /// The example's run config (`teacher.checkpoint`, and `teacher.network` for EDM, in the checkpoint folder).
    pub run: RunConfig,
    /// Where it came from.
    pub ctx: RunContext,
    /// The plugin library loaded for it.
    pub plugin: PathBuf,
    /// `[guidance]` and `[solver]` as the example writes them (for the report).
    pub guidance: Value,
    /// See `guidance`.
    pub solver: Value,
}

/// The `[teacher]` keys of an `adm` teacher that fix its network.
#[derive(Deserialize)]
struct AdmKeys {
    image_size: usize,
    num_channels: usize,
    num_res_blocks: usize,
    channel_mult: Vec<usize>,
    attention_resolutions: Vec<usize>,
    num_head_channels: usize,
    use_scale_shift_norm: bool,
    resblock_updown: bool,
    use_new_attention_order: bool,
    learn_sigma: bool,
    num_classes: usize,
    null_class: String,
}

impl Preset {
    /// Reads the example of `spec` with the checkpoint in `ckpt_dir`, loading its plugins (searching
    /// `plugin_dirs` first). The environment's `BOOT__SECTION__KEY` overrides apply, as in boot-host.
    pub fn read(spec: PresetSpec, ckpt_dir: &Path, plugin_dirs: &[PathBuf]) -> anyhow::Result<Self> {
        let path = examples_dir().join(spec.example);
        let mut overrides = vec![("teacher.checkpoint", ckpt_dir.join("teacher.safetensors").display().to_string())];
        if spec.song.is_some() {
            overrides.push(("teacher.network", ckpt_dir.join("teacher.json").display().to_string()));
        }
        let raw = RawConfig::read_with(&path, &overrides)?;
        let arch = match &spec.song {
            Some(song) => Arch::Song(song.clone()),
            None => {
                let k: AdmKeys = raw.get("teacher")?;
                Arch::Adm(AdmArch {
                    image_size: k.image_size,
                    num_channels: k.num_channels,
                    num_res_blocks: k.num_res_blocks,
                    channel_mult: k.channel_mult,
                    attention_resolutions: k.attention_resolutions,
                    num_head_channels: k.num_head_channels,
                    use_scale_shift_norm: k.use_scale_shift_norm,
                    resblock_updown: k.resblock_updown,
                    use_new_attention_order: k.use_new_attention_order,
                    learn_sigma: k.learn_sigma,
                    num_classes: k.num_classes,
                    null_row: k.null_class == "extra-row",
                })
            }
        };
        let guidance = raw.get::<Value>("guidance").unwrap_or_else(|_| serde_json::json!({ "kind": "none" }));
        let solver = raw.get::<Value>("solver").unwrap_or_else(|_| serde_json::json!({ "kind": "heun" }));
        let (run, ctx, catalogue) = load_run(raw, plugin_dirs)?;
        let plugin = catalogue.loaded.first().map(|(_, p)| p.clone()).unwrap_or_default();
        Ok(Self { spec, arch, run, ctx, plugin, guidance, solver })
    }

    /// Whether guidance is classifier-free (two network passes per teacher evaluation).
    pub fn classifier_free(&self) -> bool {
        self.guidance.get("kind").and_then(Value::as_str) == Some("cfg")
    }

    /// Algorithm 1's and the optimiser's settings, for the report.
    pub fn train_settings(&self) -> Value {
        let t = &self.run.train;
        serde_json::json!({
            "delta": t.delta, "t_min": t.t_min, "t_max": t.t_max, "boundary_every": t.boundary_every,
            "boundary_weight": t.boundary_weight, "lr": t.lr, "ema_decay": t.ema_decay,
        })
    }
}
