//! diffusers' `UNet2DModel` (`models/unets/unet_2d.py`): the pixel-space UNet of DDPM / score-SDE /
//! class-conditional checkpoints, with diffusers' parameter names, so `diffusion_pytorch_model.safetensors`
//! loads unconverted (also with the deprecated `query`/`key`/`value`/`proj_attn` attention names).

use std::path::Path;

use serde::Deserialize;

use super::block_attention::BlockAttentionKind;
use super::down_blocks::{DownBlock2D, DownBlock2DConfig, ResampleType};
use super::embeddings::{GaussianFourierProjection, TimestepEmbedding};
use super::mid_block::{UNetMidBlock2D, UNetMidBlock2DConfig};
use super::resnet::{ResnetOptions, TimeEmbeddingNorm};
use super::up_blocks::{UpBlock2D, UpBlock2DConfig};
use crate::candle::{DType, Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::activation::Activation;
use crate::embeddings::timesteps::Timesteps;
use crate::{ClassEmbeddingTable, Conv2d, Conv2dConfig, GroupNorm};

/// `UNet2DModel`'s `config.json`, with diffusers' defaults for missing keys. Keys this port does not read
/// (`_class_name`, `_diffusers_version`, ..) are listed in a warning ([`crate::config`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UNet2DConfig {
    /// Input resolution (informational).
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "three")]
    pub out_channels: usize,
    /// Map inputs from `[0, 1]` to `[-1, 1]` first.
    #[serde(default)]
    pub center_input_sample: bool,
    /// `"positional"` (sinusoid) or `"fourier"` (Gaussian Fourier features `[sin | cos]` of `log(sigma)`,
    /// whatever `flip_sin_to_cos` says, as the original; output / sigma).
    #[serde(default = "positional")]
    pub time_embedding_type: String,
    /// Width of the time embedding (default `4 * block_out_channels[0]`).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    /// Frequency shift of the sinusoid.
    #[serde(default)]
    pub freq_shift: f64,
    /// `[cos | sin]` sinusoid order.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// Encoder block types (`DownBlock2D`, `AttnDownBlock2D`).
    #[serde(default = "default_down")]
    pub down_block_types: Vec<String>,
    /// Middle block type (`UNetMidBlock2D`, or null for none).
    #[serde(default = "default_mid")]
    pub mid_block_type: Option<String>,
    /// Decoder block types (`UpBlock2D`, `AttnUpBlock2D`).
    #[serde(default = "default_up")]
    pub up_block_types: Vec<String>,
    /// Channels per level.
    #[serde(default = "default_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder level (the decoder has one more).
    #[serde(default = "two")]
    pub layers_per_block: usize,
    /// Output scale factor of the middle block.
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    /// Padding of the down-sampling convolutions.
    #[serde(default = "one")]
    pub downsample_padding: usize,
    /// `"conv"` or `"resnet"` down-sampling in attention blocks.
    #[serde(default = "conv")]
    pub downsample_type: String,
    /// `"conv"` or `"resnet"` up-sampling in attention blocks.
    #[serde(default = "conv")]
    pub upsample_type: String,
    /// Dropout (training only; ignored).
    #[serde(default)]
    pub dropout: f64,
    /// Activation of the resnets (and the time MLP).
    #[serde(default = "silu")]
    pub act_fn: String,
    /// Channels per attention head (null: one head per block).
    #[serde(default = "eight")]
    pub attention_head_dim: Option<usize>,
    /// Group norm groups (null: `min(C / 4, 32)`).
    #[serde(default = "thirty_two")]
    pub norm_num_groups: Option<usize>,
    /// Groups of the middle attention's norm (null: diffusers' rule, see [`UNetMidBlock2DConfig::attn_groups`]).
    #[serde(default)]
    pub attn_norm_num_groups: Option<usize>,
    /// Group norm epsilon.
    #[serde(default = "norm_eps")]
    pub norm_eps: f64,
    /// `"default"` or `"scale_shift"`.
    #[serde(default = "default_str")]
    pub resnet_time_scale_shift: String,
    /// Whether the middle block has attention.
    #[serde(default = "yes")]
    pub add_attention: bool,
    /// Class embedding kind (only null, i.e. a lookup table when `num_class_embeds` is set, is supported).
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Rows of the class embedding table.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    /// Only used by the `"learned"` time embedding (not supported).
    #[serde(default)]
    pub num_train_timesteps: Option<usize>,
}

fn three() -> usize {
    3
}
fn two() -> usize {
    2
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn eight() -> Option<usize> {
    Some(8)
}
fn thirty_two() -> Option<usize> {
    Some(32)
}
fn norm_eps() -> f64 {
    1e-5
}
fn positional() -> String {
    "positional".into()
}
fn conv() -> String {
    "conv".into()
}
fn silu() -> String {
    "silu".into()
}
fn default_str() -> String {
    "default".into()
}
fn default_mid() -> Option<String> {
    Some("UNetMidBlock2D".into())
}
fn default_down() -> Vec<String> {
    ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"].map(String::from).to_vec()
}
fn default_up() -> Vec<String> {
    ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"].map(String::from).to_vec()
}
fn default_channels() -> Vec<usize> {
    vec![224, 448, 672, 896]
}

impl UNet2DConfig {
    /// Parses a `config.json`; errors name `source`.
    pub fn from_json_str(text: &str, source: &str) -> crate::Result<Self> {
        crate::config::parse_json(text, source, &[])
    }

    /// Reads a `config.json`.
    pub fn from_json_file(path: &Path) -> crate::Result<Self> {
        crate::config::read_json(path, &[])
    }

    /// Width of the time embedding, where class embeddings are added.
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim.unwrap_or(4 * self.block_out_channels.first().copied().unwrap_or(0))
    }

    fn groups(&self, channels: usize) -> usize {
        self.norm_num_groups.unwrap_or((channels / 4).clamp(1, 32))
    }
}

/// The time features of a `UNet2DModel`.
#[derive(Debug, Clone)]
enum TimeProj {
    Positional(Timesteps),
    Fourier(GaussianFourierProjection),
}

/// diffusers' `UNet2DModel`. Keys: `conv_in`, `time_proj` (Fourier only), `time_embedding.linear_{1,2}`,
/// `class_embedding`, `down_blocks.*`, `mid_block.*`, `up_blocks.*`, `conv_norm_out`, `conv_out`.
#[derive(Debug, Clone)]
pub struct UNet2DModel {
    cfg: UNet2DConfig,
    conv_in: Conv2d,
    time_proj: TimeProj,
    time_embedding: TimestepEmbedding,
    class_embedding: Option<ClassEmbeddingTable>,
    down_blocks: Vec<DownBlock2D>,
    mid_block: Option<UNetMidBlock2D>,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    dtype: DType,
}

impl UNet2DModel {
    /// Builds the network from `vb` (keys as in diffusers' `state_dict`).
    pub fn new(vb: VarBuilder, cfg: &UNet2DConfig) -> Result<Self> {
        let c = cfg;
        let levels = c.block_out_channels.len();
        if levels == 0 || c.down_block_types.len() != levels || c.up_block_types.len() != levels {
            crate::candle::bail!(
                "UNet2DModel: block_out_channels ({levels}), down_block_types ({}) and up_block_types ({}) must have the same non-zero length",
                c.down_block_types.len(),
                c.up_block_types.len()
            );
        }
        if c.class_embed_type.is_some() {
            crate::candle::bail!("UNet2DModel: class_embed_type {:?} is not supported (only a lookup table via num_class_embeds)", c.class_embed_type);
        }
        let act = Activation::from_name(&c.act_fn)?;
        let ted = c.time_embed_dim();
        let c0 = c.block_out_channels[0];
        let conv_in = Conv2d::new(vb.pp("conv_in"), Conv2dConfig::plain(c.in_channels, c0, 3))?;
        let (time_proj, t_in) = match c.time_embedding_type.as_str() {
            "positional" => (TimeProj::Positional(Timesteps::new(c0, c.flip_sin_to_cos, c.freq_shift)), c0),
            "fourier" => (TimeProj::Fourier(GaussianFourierProjection::new(vb.pp("time_proj"), c0, true, false)?), 2 * c0),
            other => crate::candle::bail!("UNet2DModel: time_embedding_type `{other}` is not supported (positional or fourier)"),
        };
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), t_in, ted, None, act)?;
        let class_embedding = match c.num_class_embeds {
            Some(n) => Some(ClassEmbeddingTable::new(vb.pp("class_embedding"), n, ted, None)?),
            None => None,
        };
        let tn = TimeEmbeddingNorm::from_name(&c.resnet_time_scale_shift)?;
        let opts = |channels: usize, output_scale_factor: f64| ResnetOptions { eps: c.norm_eps, groups: c.groups(channels), act, time_embedding_norm: tn, output_scale_factor, skip_time_act: false };
        let down_type = ResampleType::from_name(&c.downsample_type)?;
        let up_type = ResampleType::from_name(&c.upsample_type)?;
        let attn_dim = |kind: &str, attn: &str, plain: &str, channels: usize| -> Result<BlockAttentionKind> {
            match kind.strip_prefix("UNetRes").unwrap_or(kind) {
                k if k == attn => Ok(BlockAttentionKind::Spatial { head_dim: c.attention_head_dim.unwrap_or(channels) }),
                k if k == plain => Ok(BlockAttentionKind::None),
                other => crate::candle::bail!("UNet2DModel: block type `{other}` is not supported ({plain} or {attn})"),
            }
        };

        let mut down_blocks = Vec::with_capacity(levels);
        let mut out_ch = c0;
        for (i, kind) in c.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = c.block_out_channels[i];
            let attention = attn_dim(kind, "AttnDownBlock2D", "DownBlock2D", out_ch)?;
            let dc = DownBlock2DConfig {
                in_channels: in_ch,
                out_channels: out_ch,
                temb_channels: Some(ted),
                num_layers: c.layers_per_block,
                resnet: opts(out_ch, 1.0),
                add_downsample: i + 1 != levels,
                downsample_padding: c.downsample_padding,
                // diffusers passes `downsample_type` to `AttnDownBlock2D` only.
                downsample_type: if matches!(attention, BlockAttentionKind::Spatial { .. }) { down_type } else { ResampleType::Conv },
                attention,
            };
            down_blocks.push(DownBlock2D::new(vb.pp(format!("down_blocks.{i}")), &dc)?);
        }

        let last = c.block_out_channels[levels - 1];
        let mid_block = match c.mid_block_type.as_deref() {
            None => None,
            Some("UNetMidBlock2D") => {
                let resnet = opts(last, c.mid_block_scale_factor);
                let attn_groups = c.attn_norm_num_groups.or(match tn {
                    TimeEmbeddingNorm::Default => Some(resnet.groups),
                    TimeEmbeddingNorm::ScaleShift => None,
                });
                let mc = UNetMidBlock2DConfig {
                    in_channels: last,
                    temb_channels: Some(ted),
                    num_layers: 1,
                    resnet,
                    attn_groups,
                    attention: if c.add_attention { BlockAttentionKind::Spatial { head_dim: c.attention_head_dim.unwrap_or(last) } } else { BlockAttentionKind::None },
                };
                Some(UNetMidBlock2D::new(vb.pp("mid_block"), &mc)?)
            }
            Some(other) => crate::candle::bail!("UNet2DModel: mid_block_type `{other}` is not supported (UNetMidBlock2D or null)"),
        };

        let rev: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(levels);
        let mut out_ch = rev[0];
        for (i, kind) in c.up_block_types.iter().enumerate() {
            let prev = out_ch;
            out_ch = rev[i];
            let attention = attn_dim(kind, "AttnUpBlock2D", "UpBlock2D", out_ch)?;
            let uc = UpBlock2DConfig {
                in_channels: rev[(i + 1).min(levels - 1)],
                prev_output_channels: prev,
                out_channels: out_ch,
                temb_channels: Some(ted),
                num_layers: c.layers_per_block + 1,
                resnet: opts(out_ch, 1.0),
                add_upsample: i + 1 != levels,
                // diffusers passes `upsample_type` to `AttnUpBlock2D` only.
                upsample_type: if matches!(attention, BlockAttentionKind::Spatial { .. }) { up_type } else { ResampleType::Conv },
                attention,
            };
            up_blocks.push(UpBlock2D::new(vb.pp(format!("up_blocks.{i}")), &uc)?);
        }
        let conv_norm_out = GroupNorm::new(vb.pp("conv_norm_out"), c0, c.norm_num_groups.unwrap_or((c0 / 4).clamp(1, 32)), c.norm_eps)?;
        let conv_out = Conv2d::new(vb.pp("conv_out"), Conv2dConfig::plain(c0, c.out_channels, 3))?;
        Ok(Self {
            cfg: c.clone(),
            conv_in,
            time_proj,
            time_embedding,
            class_embedding,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_out,
            dtype: vb.dtype(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNet2DConfig {
        &self.cfg
    }

    /// Names of the traced stages in execution order (diffusers' `trace_modules`).
    pub fn module_order(&self) -> Vec<String> {
        super::trace_module_order(self.down_blocks.len(), self.mid_block.is_some(), self.up_blocks.len())
    }

    /// The time features `t_emb` of `timesteps` (`[N]`): the sinusoid, or the Fourier features of `log(sigma)`,
    /// in the model's dtype. As diffusers, they are computed from the timesteps in `f32` for a half-precision
    /// model and then cast (a `bf16` timestep such as 999 would be off by one: [`crate::embedding_dtype`]).
    pub fn time_features(&self, timesteps: &Tensor) -> Result<Tensor> {
        let t = timesteps.to_dtype(crate::embedding_dtype(self.dtype))?;
        match &self.time_proj {
            TimeProj::Positional(p) => p.forward(&t),
            TimeProj::Fourier(f) => f.forward(&t),
        }?
        .to_dtype(self.dtype)
    }

    /// The embedding the blocks receive: `time_embedding(t_emb) + class_embedding(labels) + extra`.
    /// `labels` is required exactly when the model has a class embedding; a `None` entry embeds to zeros.
    /// `extra` (`[N or 1, time_embed_dim]`) is added last (a BOOT student's new embeddings).
    pub fn embedding(&self, timesteps: &Tensor, labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> crate::Result<Tensor> {
        let mut emb = self.time_embedding.forward(&self.time_features(timesteps)?)?;
        match (&self.class_embedding, labels) {
            (Some(table), Some(l)) => {
                if l.len() != emb.dim(0)? {
                    anyhow::bail!("UNet2DModel: {} class labels for a batch of {}", l.len(), emb.dim(0)?);
                }
                emb = (emb + table.forward(l)?.to_dtype(self.dtype)?)?;
            }
            (Some(_), None) => anyhow::bail!("UNet2DModel: class_labels should be provided when doing class conditioning"),
            (None, Some(_)) => anyhow::bail!("UNet2DModel: the model has no class embedding, but class labels were given"),
            (None, None) => {}
        }
        if let Some(e) = extra {
            emb = emb.broadcast_add(e)?;
        }
        Ok(emb)
    }

    /// `UNet2DModel(sample, timestep, class_labels).sample` for `x` (`[N, in_channels, H, W]`) and
    /// `timesteps` (`[N]`; noise levels sigma for the Fourier embedding, whose output is divided by them).
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> crate::Result<Tensor> {
        let emb = self.embedding(timesteps, labels, extra)?;
        let out = self.forward_with_embedding(x, &emb, &mut |_, _| Ok(()))?;
        Ok(match self.time_proj {
            TimeProj::Fourier(_) => out.broadcast_div(&timesteps.to_dtype(out.dtype())?.reshape(((), 1, 1, 1))?)?,
            TimeProj::Positional(_) => out,
        })
    }

    /// The network body for a given embedding, up to `conv_out` (before the Fourier model's division by
    /// sigma); `trace` sees each stage's output (named as [`UNet2DModel::module_order`]).
    pub fn forward_with_embedding(&self, x: &Tensor, emb: &Tensor, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let x = if self.cfg.center_input_sample { ((x * 2.0)? - 1.0)? } else { x.clone() };
        let mut h = self.conv_in.forward(&x)?;
        trace("conv_in", &h)?;
        let mut skips = vec![h.clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            let (out, res) = block.forward(&h, Some(emb), None, None)?;
            h = out;
            skips.extend(res);
            trace(&format!("down_blocks.{i}"), &h)?;
        }
        if let Some(m) = &self.mid_block {
            h = m.forward(&h, Some(emb), None, None)?;
            trace("mid_block", &h)?;
        }
        for (i, block) in self.up_blocks.iter().enumerate() {
            h = block.forward(&h, &mut skips, Some(emb), None, None)?;
            trace(&format!("up_blocks.{i}"), &h)?;
        }
        h = self.conv_norm_out.forward(&h)?;
        trace("conv_norm_out", &h)?;
        let out = self.conv_out.forward(&boot_sdk::ops::silu(&h)?)?;
        trace("conv_out", &out)?;
        Ok(out)
    }
}
