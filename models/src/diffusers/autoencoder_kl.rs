//! diffusers' `AutoencoderKL` decoder (`models/autoencoders/autoencoder_kl.py`, `vae.py`'s `Decoder`): what a
//! latent teacher's `decode` hook runs to turn latents into pixels (Stable Diffusion's VAE).
//!
//! `decode(z) = decoder(post_quant_conv(z))` for latents `z` as the UNet produces them divided by
//! `scaling_factor` (and shifted by `shift_factor` where the config has one): [`AutoencoderKLDecoder::decode_latents`]
//! does that step too. The encoder is not needed to distill without data and is not built: load with
//! [`AutoencoderKLDecoder::keys`] to take only the decoder's tensors from a full `vae/` file.

use std::path::Path;

use serde::Deserialize;

use super::mid_block::{UNetMidBlock2D, UNetMidBlock2DConfig};
use super::resample::Upsample2D;
use super::resnet::{ResnetBlock2D, ResnetOptions, TimeEmbeddingNorm};
use super::BlockAttentionKind;
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::activation::Activation;
use crate::{Conv2d, Conv2dConfig, GroupNorm};

/// `vae/config.json` (the keys the decoder reads; others are listed by the upstream-JSON warning).
#[derive(Debug, Clone, Deserialize)]
pub struct AutoencoderKLConfig {
    /// Image channels.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Latent channels.
    #[serde(default = "four")]
    pub latent_channels: usize,
    /// Channels of each level, from the image side.
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder level (the decoder has one more).
    #[serde(default = "one")]
    pub layers_per_block: usize,
    /// Group norm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: usize,
    /// Nonlinearity.
    #[serde(default = "silu")]
    pub act_fn: String,
    /// `up_block_types`: every entry must be `UpDecoderBlock2D`.
    #[serde(default)]
    pub up_block_types: Vec<String>,
    /// Latents are divided by this before decoding (SD 2.1: 0.18215).
    #[serde(default = "unit")]
    pub scaling_factor: f64,
    /// Added after the division, where the config has one.
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Whether there is a `post_quant_conv`.
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    /// Whether the mid block has its attention.
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
}

fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn one() -> usize {
    1
}
fn thirty_two() -> usize {
    32
}
fn silu() -> String {
    "silu".into()
}
fn unit() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// Keys of the encoder side (and of training) that a decoder does not need.
const ENCODER_KEYS: &[&str] = &["in_channels", "down_block_types", "sample_size", "force_upcast", "use_quant_conv", "latents_mean", "latents_std"];

impl AutoencoderKLConfig {
    /// Reads `vae/config.json` (upstream JSON: one policy, `crate::config`; the encoder's keys are known).
    pub fn from_json_file(path: &Path) -> crate::Result<Self> {
        crate::config::read_json(path, ENCODER_KEYS)
    }

    /// Parses a config's text; `source` names it in errors.
    pub fn from_json_str(text: &str, source: &str) -> crate::Result<Self> {
        crate::config::parse_json(text, source, ENCODER_KEYS)
    }
}

/// `UpDecoderBlock2D`. Keys: `resnets.i`, `upsamplers.0` (all levels but the last).
#[derive(Debug, Clone)]
struct UpDecoderBlock2D {
    resnets: Vec<ResnetBlock2D>,
    upsampler: Option<Upsample2D>,
}

impl UpDecoderBlock2D {
    fn new(vb: VarBuilder, num_layers: usize, in_channels: usize, out_channels: usize, add_upsample: bool, opts: ResnetOptions) -> Result<Self> {
        let resnets = (0..num_layers)
            .map(|j| ResnetBlock2D::new(vb.pp(format!("resnets.{j}")), opts.block(if j == 0 { in_channels } else { out_channels }, out_channels, None)))
            .collect::<Result<Vec<_>>>()?;
        let upsampler = if add_upsample { Some(Upsample2D::new(vb.pp("upsamplers.0"), out_channels, true, out_channels)?) } else { None };
        Ok(Self { resnets, upsampler })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for r in &self.resnets {
            h = r.forward(&h, None)?;
        }
        match &self.upsampler {
            Some(u) => u.forward(&h),
            None => Ok(h),
        }
    }
}

/// The decoder of an `AutoencoderKL`. Keys: `post_quant_conv`, `decoder.conv_in`, `decoder.mid_block.*`,
/// `decoder.up_blocks.*`, `decoder.conv_norm_out`, `decoder.conv_out`.
#[derive(Debug, Clone)]
pub struct AutoencoderKLDecoder {
    cfg: AutoencoderKLConfig,
    post_quant_conv: Option<Conv2d>,
    conv_in: Conv2d,
    mid_block: UNetMidBlock2D,
    up_blocks: Vec<UpDecoderBlock2D>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    act: Activation,
}

impl AutoencoderKLDecoder {
    /// Whether a tensor of a full `AutoencoderKL` file belongs to the decoder.
    pub fn keys(name: &str) -> bool {
        name.starts_with("decoder.") || name.starts_with("post_quant_conv.")
    }

    /// Loads the decoder's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: &AutoencoderKLConfig) -> crate::Result<Self> {
        let c = cfg;
        if c.block_out_channels.is_empty() {
            anyhow::bail!("AutoencoderKL: block_out_channels is empty");
        }
        if let Some(t) = c.up_block_types.iter().find(|t| t.as_str() != "UpDecoderBlock2D") {
            anyhow::bail!("AutoencoderKL: up block type `{t}` is not supported (UpDecoderBlock2D)");
        }
        let act = Activation::from_name(&c.act_fn)?;
        let opts = ResnetOptions { eps: 1e-6, groups: c.norm_num_groups, act, time_embedding_norm: TimeEmbeddingNorm::Default, output_scale_factor: 1.0, skip_time_act: false };
        let post_quant_conv = match c.use_post_quant_conv {
            true => Some(Conv2d::new(vb.pp("post_quant_conv"), Conv2dConfig::plain(c.latent_channels, c.latent_channels, 1))?),
            false => None,
        };
        let d = vb.pp("decoder");
        let rev: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let top = rev[0];
        let conv_in = Conv2d::new(d.pp("conv_in"), Conv2dConfig::plain(c.latent_channels, top, 3))?;
        let attention = if c.mid_block_add_attention { BlockAttentionKind::Spatial { head_dim: top } } else { BlockAttentionKind::None };
        let mid = UNetMidBlock2DConfig { in_channels: top, temb_channels: None, num_layers: 1, resnet: opts, attn_groups: Some(c.norm_num_groups), attention };
        let mid_block = UNetMidBlock2D::new(d.pp("mid_block"), &mid)?;
        let mut up_blocks = Vec::with_capacity(rev.len());
        for (i, &out) in rev.iter().enumerate() {
            let prev = if i == 0 { top } else { rev[i - 1] };
            up_blocks.push(UpDecoderBlock2D::new(d.pp(format!("up_blocks.{i}")), c.layers_per_block + 1, prev, out, i + 1 < rev.len(), opts)?);
        }
        let last = c.block_out_channels[0];
        let conv_norm_out = GroupNorm::new(d.pp("conv_norm_out"), last, c.norm_num_groups, 1e-6)?;
        let conv_out = Conv2d::new(d.pp("conv_out"), Conv2dConfig::plain(last, c.out_channels, 3))?;
        Ok(Self { cfg: c.clone(), post_quant_conv, conv_in, mid_block, up_blocks, conv_norm_out, conv_out, act })
    }

    /// The configuration.
    pub fn config(&self) -> &AutoencoderKLConfig {
        &self.cfg
    }

    /// `AutoencoderKL.decode(z).sample` for latents `z` (`[B, latent_channels, h, w]`, already scaled).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(z)?,
            None => z.clone(),
        };
        let mut h = self.conv_in.forward(&z)?;
        h = self.mid_block.forward(&h, None, None, None)?;
        for b in &self.up_blocks {
            h = b.forward(&h)?;
        }
        h = self.act.after_group_norm(&self.conv_norm_out, &h, None)?;
        self.conv_out.forward(&h)
    }

    /// Pixels of a latent diffusion model's latents, as its pipeline decodes them:
    /// `decode(latents / scaling_factor + shift_factor)`.
    pub fn decode_latents(&self, latents: &Tensor) -> Result<Tensor> {
        let z = (latents / self.cfg.scaling_factor)?;
        let z = match self.cfg.shift_factor {
            Some(s) => (z + s)?,
            None => z,
        };
        self.forward(&z)
    }
}
