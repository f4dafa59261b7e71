//! `[teacher] kind = "adm"`: the settings of a guided-diffusion checkpoint, named and defaulted as
//! guided-diffusion's `create_model_and_diffusion` arguments (`script_util.model_and_diffusion_defaults()`),
//! so the `MODEL_FLAGS` / `DIFFUSION_FLAGS` a checkpoint was published with translate one to one, plus
//! what BOOT needs: the prediction target, the null class for classifier-free guidance and the labels.
//!
//! ```toml
//! [teacher]
//! kind = "adm"
//! checkpoint = "64x64_diffusion.pt"   # or .safetensors with the same keys; relative to the config
//! image_size = 64
//! num_channels = 192
//! num_res_blocks = 3
//! attention_resolutions = [32, 16, 8] # resolutions, as the --attention_resolutions flag
//! num_head_channels = 64
//! use_scale_shift_norm = true
//! resblock_updown = true
//! use_new_attention_order = true
//! learn_sigma = true
//! class_cond = true
//! noise_schedule = "cosine"
//! prediction = "eps"                  # "eps" (openai's models) or "x0" (signal prediction)
//! null_class = "none"                 # "none" | "zero" | "extra-row" (see NullClass)
//! labels = "uniform"                  # or a list of classes, e.g. [88, 207, 279]
//! ```

use std::path::PathBuf;

use boot_models::adm::UNetModelConfig;
pub use boot_kit::{LabelMode, Labels};
use boot_sdk::{BetaSchedule, InputError};
use serde::Deserialize;

/// What the network's first `in_channels` output channels predict (guided-diffusion has no v-prediction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    /// The noise `eps` (openai's released models).
    Eps,
    /// The signal `x0` (BOOT's own ImageNet teacher, paper Table 3).
    X0,
}

impl From<Prediction> for boot_kit::Prediction {
    fn from(p: Prediction) -> Self {
        match p {
            Prediction::Eps => boot_kit::Prediction::Eps,
            Prediction::X0 => boot_kit::Prediction::X0,
        }
    }
}

/// How the null label of classifier-free guidance is fed to a class-conditional network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NullClass {
    /// The network has no null class (openai's class-conditional models were trained without label
    /// dropout): asking for the null condition (CFG) is an error.
    None,
    /// The null label adds nothing to the embedding (`emb = time_embed(t)`), a proxy for a network that
    /// never saw an unconditional input. Use it only knowingly (e.g. smoke runs on random weights).
    Zero,
    /// The network was trained with label dropout into one extra embedding row: `label_emb` has
    /// `num_classes + 1` rows and row `num_classes` is the null class.
    ExtraRow,
}

/// guided-diffusion's beta schedules (`--noise_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseScheduleKind {
    /// DDPM's linear betas, scaled by `1000 / diffusion_steps`.
    Linear,
    /// The cosine schedule of Nichol & Dhariwal.
    Cosine,
}

/// `[teacher] kind = "adm"`. Field defaults are guided-diffusion's `model_and_diffusion_defaults()`
/// (`-1` stands for "unset" where the original uses it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmTeacherConfig {
    /// The weights: a PyTorch `.pt`/`.pth` state dict as guided-diffusion saves it (read with candle's
    /// pickle reader), or `.safetensors` with the same keys. Relative to the config file.
    pub checkpoint: PathBuf,
    /// For `.pt` files holding a dict around the state dict: the key of the state dict (e.g. `"model"`).
    #[serde(default)]
    pub state_dict_key: Option<String>,
    /// Image resolution (`--image_size`).
    #[serde(default = "d64")]
    pub image_size: usize,
    /// Image channels (guided-diffusion fixes 3).
    #[serde(default = "d3")]
    pub in_channels: usize,
    /// Base channel count (`--num_channels`).
    #[serde(default = "d128")]
    pub num_channels: usize,
    /// Residual blocks per level (`--num_res_blocks`).
    #[serde(default = "d2")]
    pub num_res_blocks: usize,
    /// Channel multipliers per level (`--channel_mult`); empty: guided-diffusion's choice for the image size.
    #[serde(default)]
    pub channel_mult: Vec<f64>,
    /// **Resolutions** with attention (`--attention_resolutions 32,16,8`), converted to downsample factors
    /// `image_size / resolution` as `create_model` does.
    #[serde(default = "d16_8")]
    pub attention_resolutions: Vec<usize>,
    /// Heads per attention block when `num_head_channels` is -1 (`--num_heads`).
    #[serde(default = "d4")]
    pub num_heads: i64,
    /// Channels per attention head, -1 to use `num_heads` (`--num_head_channels`).
    #[serde(default = "minus_one")]
    pub num_head_channels: i64,
    /// Heads in the decoder's attention, -1 for `num_heads` (`--num_heads_upsample`).
    #[serde(default = "minus_one")]
    pub num_heads_upsample: i64,
    /// FiLM-style timestep conditioning (`--use_scale_shift_norm`).
    #[serde(default = "yes")]
    pub use_scale_shift_norm: bool,
    /// Residual up/down-sampling blocks (`--resblock_updown`).
    #[serde(default)]
    pub resblock_updown: bool,
    /// `QKVAttention` instead of `QKVAttentionLegacy` (`--use_new_attention_order`).
    #[serde(default)]
    pub use_new_attention_order: bool,
    /// The network also outputs variance values (`--learn_sigma`): `2 * in_channels` outputs, of which the
    /// teacher uses the first `in_channels`.
    #[serde(default)]
    pub learn_sigma: bool,
    /// Class-conditional (`--class_cond`).
    #[serde(default)]
    pub class_cond: bool,
    /// Number of real classes (guided-diffusion's `NUM_CLASSES`, 1000), not counting a null row.
    #[serde(default = "d1000")]
    pub num_classes: usize,
    /// Training timesteps (`--diffusion_steps`).
    #[serde(default = "d1000")]
    pub diffusion_steps: usize,
    /// Beta schedule (`--noise_schedule`).
    #[serde(default = "linear")]
    pub noise_schedule: NoiseScheduleKind,
    /// Feed the network `t * 1000 / diffusion_steps` instead of `t` (`--rescale_timesteps`).
    #[serde(default)]
    pub rescale_timesteps: bool,
    /// What the network predicts.
    #[serde(default = "eps")]
    pub prediction: Prediction,
    /// How classifier-free guidance's null label is fed.
    #[serde(default = "null_none")]
    pub null_class: NullClass,
    /// The labels the teacher draws.
    #[serde(default)]
    pub labels: Labels,
}

fn d3() -> usize {
    3
}
fn d2() -> usize {
    2
}
fn d4() -> i64 {
    4
}
fn d64() -> usize {
    64
}
fn d128() -> usize {
    128
}
fn d1000() -> usize {
    1000
}
fn d16_8() -> Vec<usize> {
    vec![16, 8]
}
fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}
fn linear() -> NoiseScheduleKind {
    NoiseScheduleKind::Linear
}
fn eps() -> Prediction {
    Prediction::Eps
}
fn null_none() -> NullClass {
    NullClass::None
}

fn err(key: &str, message: String) -> boot_sdk::anyhow::Error {
    InputError::config(format!("teacher.{key}"), message).into()
}

impl AdmTeacherConfig {
    /// Channel multipliers: the configured ones, or `create_model`'s choice for `image_size`.
    pub fn channel_mult(&self) -> boot_sdk::Result<Vec<f64>> {
        if !self.channel_mult.is_empty() {
            return Ok(self.channel_mult.clone());
        }
        Ok(match self.image_size {
            512 => vec![0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
            256 => vec![1.0, 1.0, 2.0, 2.0, 4.0, 4.0],
            128 => vec![1.0, 1.0, 2.0, 3.0, 4.0],
            64 => vec![1.0, 2.0, 3.0, 4.0],
            s => return Err(err("channel_mult", format!("guided-diffusion has no default for image_size {s}: set it, e.g. [1, 2, 2]"))),
        })
    }

    /// Rows of the label embedding table: `num_classes`, plus one with `null_class = "extra-row"`.
    pub fn label_rows(&self) -> usize {
        self.num_classes + usize::from(self.null_class == NullClass::ExtraRow)
    }

    /// The `UNetModel` constructor arguments `create_model` would pass, after checking the settings.
    pub fn unet_config(&self) -> boot_sdk::Result<UNetModelConfig> {
        if self.image_size == 0 || self.in_channels == 0 || self.num_channels == 0 {
            return Err(err("image_size", "image_size, in_channels and num_channels must be positive".into()));
        }
        let mut ds = Vec::with_capacity(self.attention_resolutions.len());
        for &res in &self.attention_resolutions {
            if res == 0 || !self.image_size.is_multiple_of(res) {
                return Err(err("attention_resolutions", format!("resolution {res} does not divide image_size {}", self.image_size)));
            }
            ds.push(self.image_size / res);
        }
        if self.num_head_channels == -1 && self.num_heads <= 0 {
            return Err(err("num_heads", format!("must be positive when num_head_channels is -1, got {}", self.num_heads)));
        }
        if self.num_head_channels == 0 || self.num_head_channels < -1 {
            return Err(err("num_head_channels", format!("must be positive or -1, got {}", self.num_head_channels)));
        }
        if self.class_cond && self.num_classes == 0 {
            return Err(err("num_classes", "a class-conditional model needs at least one class".into()));
        }
        Ok(UNetModelConfig {
            image_size: self.image_size,
            in_channels: self.in_channels,
            model_channels: self.num_channels,
            out_channels: if self.learn_sigma { 2 * self.in_channels } else { self.in_channels },
            num_res_blocks: self.num_res_blocks,
            attention_resolutions: ds,
            dropout: 0.0,
            channel_mult: self.channel_mult()?,
            conv_resample: true,
            dims: 2,
            num_classes: self.class_cond.then(|| self.label_rows()),
            use_checkpoint: false,
            use_fp16: false,
            num_heads: self.num_heads,
            num_head_channels: self.num_head_channels,
            num_heads_upsample: self.num_heads_upsample,
            use_scale_shift_norm: self.use_scale_shift_norm,
            resblock_updown: self.resblock_updown,
            use_new_attention_order: self.use_new_attention_order,
        })
    }

    /// The beta schedule the network was trained with.
    pub fn beta_schedule(&self) -> boot_sdk::Result<BetaSchedule> {
        if self.diffusion_steps < 2 {
            return Err(err("diffusion_steps", format!("must be at least 2, got {}", self.diffusion_steps)));
        }
        match self.noise_schedule {
            NoiseScheduleKind::Cosine => BetaSchedule::cosine(self.diffusion_steps),
            NoiseScheduleKind::Linear => BetaSchedule::guided_diffusion_linear(self.diffusion_steps),
        }
        .map_err(|e| err("noise_schedule", e.to_string()))
    }

    /// Checks the label settings against the model.
    pub fn check_labels(&self) -> boot_sdk::Result<()> {
        self.labels.check(self.class_cond.then_some(self.num_classes))
    }
}
