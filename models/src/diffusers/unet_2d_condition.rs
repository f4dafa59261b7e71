//! diffusers' `UNet2DConditionModel` (`models/unets/unet_2d_condition.py`) in its Stable Diffusion and
//! DeepFloyd IF configurations, with diffusers' parameter names so `unet/diffusion_pytorch_model.safetensors`
//! loads unconverted.
//!
//! - Stable Diffusion (SD 1.x: conv projections, one head count for all blocks; SD 2.x: linear projections,
//!   head counts per block): `CrossAttnDownBlock2D` / `DownBlock2D` encoder, `UNetMidBlock2DCrossAttn`,
//!   `UpBlock2D` / `CrossAttnUpBlock2D` decoder.
//! - DeepFloyd IF stage I and II: `ResnetDownsampleBlock2D` / `SimpleCrossAttnDownBlock2D` encoder,
//!   `UNetMidBlock2DSimpleCrossAttn`, `SimpleCrossAttnUpBlock2D` / `ResnetUpsampleBlock2D` decoder (resnet
//!   resamplers, attention with added text keys and values), the text states pooled into the time embedding
//!   (`addition_embed_type = "text"`) and projected for the attention (`encoder_hid_proj`), the noise level of
//!   stage II embedded like a timestep (`class_embed_type = "timestep"`), `resnet_skip_time_act`,
//!   `resnet_out_scale_factor`, `only_cross_attention`, and the text padding mask (`encoder_attention_mask`).
//!
//! Other features are refused when the config is read, with a line naming the file and the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::block_attention::BlockAttentionKind;
use super::down_blocks::{DownBlock2D, DownBlock2DConfig, ResampleType};
use super::embeddings::TimestepEmbedding;
use super::mid_block::{UNetMidBlock2D, UNetMidBlock2DConfig};
use super::resnet::{ResnetOptions, TimeEmbeddingNorm};
use super::text_time_embedding::TextTimeEmbedding;
use super::up_blocks::{UpBlock2D, UpBlock2DConfig};
use crate::candle::{DType, Result, Tensor};
use crate::candle_nn::VarBuilder;
use boot_sdk::InputError;
use crate::layers::activation::Activation;
use crate::embeddings::timesteps::Timesteps;
use crate::{ClassEmbeddingTable, Conv2d, Conv2dConfig, GroupNorm, Linear};

/// A setting given once for all blocks or once per block (diffusers accepts both).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock<T> {
    /// The same value for every block.
    One(T),
    /// One value per down block (up blocks take them reversed).
    Many(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// The per-block values for `n` blocks.
    pub fn expand(&self, n: usize, key: &str) -> Result<Vec<T>> {
        match self {
            PerBlock::One(v) => Ok(vec![v.clone(); n]),
            PerBlock::Many(v) if v.len() == n => Ok(v.clone()),
            PerBlock::Many(v) => crate::candle::bail!("UNet2DConditionModel: {key} has {} values for {n} blocks", v.len()),
        }
    }
}

/// `UNet2DConditionModel`'s `config.json`, with diffusers' defaults for missing keys. Keys this port does
/// not read (`_class_name`, `_diffusers_version`, ..) are listed in a warning ([`crate::config`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UNet2DConditionConfig {
    /// Input resolution in latent pixels (informational).
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Input channels.
    #[serde(default = "four")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "four")]
    pub out_channels: usize,
    /// Map inputs from `[0, 1]` to `[-1, 1]` first.
    #[serde(default)]
    pub center_input_sample: bool,
    /// `[cos | sin]` sinusoid order.
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the sinusoid.
    #[serde(default)]
    pub freq_shift: f64,
    /// Encoder block types (`CrossAttnDownBlock2D`, `DownBlock2D`, `ResnetDownsampleBlock2D`,
    /// `SimpleCrossAttnDownBlock2D`).
    #[serde(default = "default_down")]
    pub down_block_types: Vec<String>,
    /// Middle block type (`UNetMidBlock2DCrossAttn`, `UNetMidBlock2DSimpleCrossAttn`, or null).
    #[serde(default = "default_mid")]
    pub mid_block_type: Option<String>,
    /// Decoder block types (`UpBlock2D`, `CrossAttnUpBlock2D`, `SimpleCrossAttnUpBlock2D`,
    /// `ResnetUpsampleBlock2D`).
    #[serde(default = "default_up")]
    pub up_block_types: Vec<String>,
    /// `attn1` attends to the text states too (CrossAttn blocks); no self keys and values (IF blocks).
    #[serde(default = "no_per_block")]
    pub only_cross_attention: PerBlock<bool>,
    /// Channels per level.
    #[serde(default = "default_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder level (the decoder has one more).
    #[serde(default = "two_per_block")]
    pub layers_per_block: PerBlock<usize>,
    /// Padding of the down-sampling convolutions.
    #[serde(default = "one")]
    pub downsample_padding: usize,
    /// Output scale factor of the middle block's resnets (IF stage II: 1 / 0.7071).
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    /// Dropout (training only; ignored).
    #[serde(default)]
    pub dropout: f64,
    /// Activation of the resnets, the time MLP and `conv_act`.
    #[serde(default = "silu")]
    pub act_fn: String,
    /// Group norm groups.
    #[serde(default = "thirty_two")]
    pub norm_num_groups: Option<usize>,
    /// Group norm epsilon of the resnets and `conv_norm_out`.
    #[serde(default = "norm_eps")]
    pub norm_eps: f64,
    /// Width of the text states.
    #[serde(default = "default_cross_dim")]
    pub cross_attention_dim: PerBlock<usize>,
    /// Transformer blocks per attention layer.
    #[serde(default = "one_per_block")]
    pub transformer_layers_per_block: PerBlock<usize>,
    /// Decoder transformer blocks, when they differ from the reversed encoder's.
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<Vec<usize>>,
    /// Legacy name of `num_attention_heads` in SD configs (the number of heads, not their width); the
    /// channels per head of the IF blocks.
    #[serde(default = "eight_per_block")]
    pub attention_head_dim: PerBlock<usize>,
    /// Heads per attention layer (default: `attention_head_dim`).
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock<usize>>,
    /// Linear `proj_in` / `proj_out` (SD 2.x).
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Rows of a class embedding table added to the time embedding.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    /// Softmax upcast of the old attention processor (no effect on this port's float32 softmax).
    #[serde(default)]
    pub upcast_attention: bool,
    /// `"default"` or `"scale_shift"`.
    #[serde(default = "default_str")]
    pub resnet_time_scale_shift: String,
    /// Time MLP width (default `4 * block_out_channels[0]`).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    /// Activation applied to the whole embedding before the blocks.
    #[serde(default)]
    pub time_embedding_act_fn: Option<String>,
    /// Activation after the time MLP's second layer.
    #[serde(default)]
    pub timestep_post_act: Option<String>,
    /// Width of the raw text states, projected to `cross_attention_dim` by `encoder_hid_proj` (IF: T5's 4096).
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    /// The projection of the text states: `"text_proj"` (a linear layer; the default with `encoder_hid_dim`).
    #[serde(default)]
    pub encoder_hid_dim_type: Option<String>,
    /// `"text"`: the text states pooled by `add_embedding` (`TextTimeEmbedding`) are added to the time
    /// embedding (IF).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Heads of the text pooling.
    #[serde(default = "sixty_four")]
    pub addition_embed_type_num_heads: usize,
    /// `"timestep"`: the class labels are values embedded like timesteps (the sinusoid, then `class_embedding`,
    /// a time MLP; IF stage II's noise level); null: a `num_class_embeds` table, if any.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// The resnets of the IF blocks take the time embedding without the activation.
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    /// Output scale factor of the resnets of the IF blocks (`ResnetDownsampleBlock2D`, `SimpleCrossAttn*`,
    /// `ResnetUpsampleBlock2D`).
    #[serde(default = "one_f")]
    pub resnet_out_scale_factor: f64,
    /// Only cross-attention in `UNetMidBlock2DSimpleCrossAttn` (default: `only_cross_attention` when that is one
    /// value, else false).
    #[serde(default)]
    pub mid_block_only_cross_attention: Option<bool>,
    /// `"group_norm"`: the IF attention layers normalise the text states (`norm_cross`, 32 groups).
    #[serde(default)]
    pub cross_attention_norm: Option<String>,
    /// Kernel of `conv_in`.
    #[serde(default = "three")]
    pub conv_in_kernel: usize,
    /// Kernel of `conv_out`.
    #[serde(default = "three")]
    pub conv_out_kernel: usize,
    /// Every other key: the unsupported ones must hold their defaults (see [`UNet2DConditionConfig::check`]).
    #[serde(flatten)]
    pub other: BTreeMap<String, crate::serde_json::Value>,
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
fn sixty_four() -> usize {
    64
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn thirty_two() -> Option<usize> {
    Some(32)
}
fn norm_eps() -> f64 {
    1e-5
}
fn silu() -> String {
    "silu".into()
}
fn default_str() -> String {
    "default".into()
}
fn no_per_block() -> PerBlock<bool> {
    PerBlock::One(false)
}
fn one_per_block() -> PerBlock<usize> {
    PerBlock::One(1)
}
fn two_per_block() -> PerBlock<usize> {
    PerBlock::One(2)
}
fn eight_per_block() -> PerBlock<usize> {
    PerBlock::One(8)
}
fn default_cross_dim() -> PerBlock<usize> {
    PerBlock::One(1280)
}
fn default_mid() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn default_down() -> Vec<String> {
    ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"].map(String::from).to_vec()
}
fn default_up() -> Vec<String> {
    ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"].map(String::from).to_vec()
}
fn default_channels() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}

/// The value of an unsupported feature's key that means "off".
#[derive(Debug, Clone, Copy)]
enum Off {
    Null,
    False,
    Str(&'static str),
}

impl Off {
    fn matches(self, v: &crate::serde_json::Value) -> bool {
        match self {
            Off::Null => v.is_null(),
            Off::False => v.as_bool() == Some(false),
            Off::Str(s) => v.as_str() == Some(s),
        }
    }
}

impl std::fmt::Display for Off {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Off::Null => write!(f, "null"),
            Off::False => write!(f, "false"),
            Off::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

/// Keys of features this port does not implement, with the value that means "off".
const UNSUPPORTED_UNLESS: &[(&str, Off)] = &[
    ("addition_time_embed_dim", Off::Null),
    ("dual_cross_attention", Off::False),
    ("time_cond_proj_dim", Off::Null),
    ("projection_class_embeddings_input_dim", Off::Null),
    ("class_embeddings_concat", Off::False),
    ("attention_type", Off::Str("default")),
    ("time_embedding_type", Off::Str("positional")),
];

/// The block types this port builds (diffusers also accepts them with a `UNetRes` prefix).
const DOWN_BLOCKS: &[&str] = &["CrossAttnDownBlock2D", "DownBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"];
const MID_BLOCKS: &[&str] = &["UNetMidBlock2DCrossAttn", "UNetMidBlock2DSimpleCrossAttn"];
const UP_BLOCKS: &[&str] = &["UpBlock2D", "CrossAttnUpBlock2D", "ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"];

/// diffusers' `cross_attention_norm_num_groups` (the `SimpleCrossAttn` blocks keep the default).
const CROSS_ATTENTION_NORM_GROUPS: usize = 32;

/// The bias diffusers puts on the logits of padded text tokens (`(1 - mask) * -10000`).
const MASK_BIAS: f64 = -10000.0;

fn block_name(kind: &str) -> &str {
    kind.strip_prefix("UNetRes").unwrap_or(kind)
}

impl UNet2DConditionConfig {
    /// Parses a `config.json`; errors (including unsupported features) name `source` and the key.
    pub fn from_json_str(text: &str, source: &str) -> crate::Result<Self> {
        let cfg: Self = crate::config::parse_json(text, source, &[])?;
        cfg.check(source)?;
        Ok(cfg)
    }

    /// Reads a `config.json`.
    pub fn from_json_file(path: &Path) -> crate::Result<Self> {
        let cfg: Self = crate::config::read_json(path, &[])?;
        cfg.check(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Refuses unsupported features (a key of [`UNSUPPORTED_UNLESS`] set to anything but its "off" value, a
    /// value of a known key this port does not build, a block type it does not have) with an
    /// [`InputError`] naming `source` and the key, and lists the keys nothing reads in one warning
    /// ([`crate::config::warn_unknown`]).
    pub fn check(&self, source: &str) -> crate::Result<()> {
        let refuse = |key: &str, msg: String| -> crate::Result<()> { Err(InputError::new(source, key, msg).into()) };
        let mut unknown = Vec::new();
        for (key, value) in &self.other {
            if let Some((_, off)) = UNSUPPORTED_UNLESS.iter().find(|(k, _)| k == key) {
                if !off.matches(value) {
                    return refuse(key, format!("{value} is not supported by this port (only {off})"));
                }
            } else if !key.starts_with('_') {
                // `_class_name`, `_diffusers_version`: diffusers' own bookkeeping.
                unknown.push(key.as_str());
            }
        }
        let one_of = |key: &str, value: &Option<String>, supported: &str| -> crate::Result<()> {
            match value.as_deref() {
                Some(v) if v != supported => refuse(key, format!("\"{v}\" is not supported by this port (only \"{supported}\" or null)")),
                _ => Ok(()),
            }
        };
        one_of("encoder_hid_dim_type", &self.encoder_hid_dim_type, "text_proj")?;
        one_of("addition_embed_type", &self.addition_embed_type, "text")?;
        one_of("class_embed_type", &self.class_embed_type, "timestep")?;
        one_of("cross_attention_norm", &self.cross_attention_norm, "group_norm")?;
        if self.encoder_hid_dim_type.is_some() && self.encoder_hid_dim.is_none() {
            return refuse("encoder_hid_dim", "must be set when encoder_hid_dim_type is".into());
        }
        let single_cross = matches!(self.cross_attention_dim, PerBlock::One(_));
        if (self.encoder_hid_dim.is_some() || self.addition_embed_type.is_some()) && !single_cross {
            return refuse("cross_attention_dim", "one value per block is not supported with encoder_hid_dim or addition_embed_type".into());
        }
        let blocks = |key: &str, kinds: &[String], known: &[&str]| -> crate::Result<()> {
            for (i, kind) in kinds.iter().enumerate() {
                if !known.contains(&block_name(kind)) {
                    return refuse(&format!("{key}[{i}]"), format!("\"{kind}\" is not supported by this port (one of {})", known.join(", ")));
                }
            }
            Ok(())
        };
        blocks("down_block_types", &self.down_block_types, DOWN_BLOCKS)?;
        blocks("up_block_types", &self.up_block_types, UP_BLOCKS)?;
        if let Some(kind) = &self.mid_block_type {
            if !MID_BLOCKS.contains(&block_name(kind)) {
                return refuse("mid_block_type", format!("\"{kind}\" is not supported by this port (one of {}, or null)", MID_BLOCKS.join(", ")));
            }
        }
        crate::config::warn_unknown(source, &unknown);
        Ok(())
    }

    /// Width of the time embedding (where class embeddings are added).
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim.unwrap_or(4 * self.block_out_channels.first().copied().unwrap_or(0))
    }

    /// Whether `UNetMidBlock2DSimpleCrossAttn` has only cross-attention: `mid_block_only_cross_attention`, or
    /// `only_cross_attention` when that is one value, else false (diffusers' rule).
    pub fn mid_only_cross_attention(&self) -> bool {
        match (self.mid_block_only_cross_attention, &self.only_cross_attention) {
            (Some(v), _) => v,
            (None, PerBlock::One(v)) => *v,
            (None, PerBlock::Many(_)) => false,
        }
    }
}

/// The class condition of a [`UNet2DConditionModel`] (diffusers' `class_labels`), of the kind its config asks
/// for.
#[derive(Debug, Clone, Copy)]
pub enum ClassLabels<'a> {
    /// Rows of the `num_class_embeds` table, one per sample.
    Rows(&'a [Option<u32>]),
    /// Values embedded like timesteps (`class_embed_type = "timestep"`: IF stage II's noise level), `[N]`.
    Timesteps(&'a Tensor),
}

/// The class embedding: a table, or a time MLP over the sinusoid of the labels.
#[derive(Debug, Clone)]
enum ClassEmbedding {
    Table(ClassEmbeddingTable),
    Timestep(TimestepEmbedding),
}

/// diffusers' `UNet2DConditionModel` (Stable Diffusion and DeepFloyd IF layouts). Keys: `conv_in`,
/// `time_embedding.linear_{1,2}`, `class_embedding` (a table, or `linear_{1,2}`), `add_embedding`
/// (`TextTimeEmbedding`), `encoder_hid_proj`, `down_blocks.*`, `mid_block.*`, `up_blocks.*`,
/// `conv_norm_out`, `conv_out`.
#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    cfg: UNet2DConditionConfig,
    conv_in: Conv2d,
    time_proj: Timesteps,
    time_embedding: TimestepEmbedding,
    timestep_post_act: Option<Activation>,
    class_embedding: Option<ClassEmbedding>,
    add_embedding: Option<TextTimeEmbedding>,
    time_embed_act: Option<Activation>,
    encoder_hid_proj: Option<Linear>,
    down_blocks: Vec<DownBlock2D>,
    mid_block: Option<UNetMidBlock2D>,
    up_blocks: Vec<UpBlock2D>,
    conv_norm_out: GroupNorm,
    conv_act: Activation,
    conv_out: Conv2d,
    dtype: DType,
}

impl UNet2DConditionModel {
    /// Builds the network from `vb` (keys as in diffusers' `state_dict`).
    pub fn new(vb: VarBuilder, cfg: &UNet2DConditionConfig) -> Result<Self> {
        let c = cfg;
        let n = c.block_out_channels.len();
        if n == 0 || c.down_block_types.len() != n || c.up_block_types.len() != n {
            crate::candle::bail!(
                "UNet2DConditionModel: block_out_channels ({n}), down_block_types ({}) and up_block_types ({}) must have the same non-zero length",
                c.down_block_types.len(),
                c.up_block_types.len()
            );
        }
        let groups = c.norm_num_groups.ok_or_else(|| crate::candle::Error::Msg("UNet2DConditionModel: norm_num_groups null is not supported".into()))?;
        let act = Activation::from_name(&c.act_fn)?;
        let ted = c.time_embed_dim();
        let c0 = c.block_out_channels[0];
        let heads = c.num_attention_heads.as_ref().unwrap_or(&c.attention_head_dim).expand(n, "num_attention_heads")?;
        let head_dims = c.attention_head_dim.expand(n, "attention_head_dim")?;
        let cross = c.cross_attention_dim.expand(n, "cross_attention_dim")?;
        let layers = c.layers_per_block.expand(n, "layers_per_block")?;
        let tlayers = c.transformer_layers_per_block.expand(n, "transformer_layers_per_block")?;
        let only_cross = c.only_cross_attention.expand(n, "only_cross_attention")?;
        let tn = TimeEmbeddingNorm::from_name(&c.resnet_time_scale_shift)?;
        // The SD blocks' resnets; the IF blocks' take `resnet_skip_time_act` and `resnet_out_scale_factor`.
        let opts = |output_scale_factor: f64, skip_time_act: bool| ResnetOptions { eps: c.norm_eps, groups, act, time_embedding_norm: tn, output_scale_factor, skip_time_act };
        let if_opts = opts(c.resnet_out_scale_factor, c.resnet_skip_time_act);
        let cross_attention_norm_groups = c.cross_attention_norm.as_ref().map(|_| CROSS_ATTENTION_NORM_GROUPS);
        let transformer = |i: usize, layers: usize, only_cross_attention: bool| BlockAttentionKind::Transformer {
            heads: heads[i],
            layers,
            cross_attention_dim: Some(cross[i]),
            use_linear_projection: c.use_linear_projection,
            only_cross_attention,
        };
        let added_kv = |head_dim: usize, i: usize, only_cross_attention: bool| BlockAttentionKind::AddedKv {
            head_dim,
            cross_attention_dim: cross[i],
            cross_attention_norm_groups,
            only_cross_attention,
        };
        // (attention, resample type, resnet options) of a block type; `head_dim` and `i` index its settings.
        let block = |kind: &str, i: usize, head_dim: usize, layers: usize| -> Result<(BlockAttentionKind, ResampleType, ResnetOptions)> {
            Ok(match block_name(kind) {
                "CrossAttnDownBlock2D" | "CrossAttnUpBlock2D" => (transformer(i, layers, only_cross[i]), ResampleType::Conv, opts(1.0, false)),
                "DownBlock2D" | "UpBlock2D" => (BlockAttentionKind::None, ResampleType::Conv, opts(1.0, false)),
                "ResnetDownsampleBlock2D" | "ResnetUpsampleBlock2D" => (BlockAttentionKind::None, ResampleType::Resnet, if_opts),
                "SimpleCrossAttnDownBlock2D" | "SimpleCrossAttnUpBlock2D" => (added_kv(head_dim, i, only_cross[i]), ResampleType::Resnet, if_opts),
                other => crate::candle::bail!("UNet2DConditionModel: block type `{other}` is not supported"),
            })
        };

        let conv_in = Conv2d::new(vb.pp("conv_in"), Conv2dConfig::plain(c.in_channels, c0, c.conv_in_kernel))?;
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), c0, ted, None, act)?;
        let optional_act = |name: &Option<String>| name.as_deref().map(Activation::from_name).transpose();
        let class_embedding = match (c.class_embed_type.as_deref(), c.num_class_embeds) {
            (Some("timestep"), _) => Some(ClassEmbedding::Timestep(TimestepEmbedding::new(vb.pp("class_embedding"), c0, ted, None, act)?)),
            (Some(other), _) => crate::candle::bail!("UNet2DConditionModel: class_embed_type `{other}` is not supported"),
            (None, Some(rows)) => Some(ClassEmbedding::Table(ClassEmbeddingTable::new(vb.pp("class_embedding"), rows, ted, None)?)),
            (None, None) => None,
        };
        // The text width: `encoder_hid_dim` when the states are projected, else `cross_attention_dim`.
        let text_dim = c.encoder_hid_dim.unwrap_or(cross[0]);
        let add_embedding = match c.addition_embed_type.as_deref() {
            Some("text") => Some(TextTimeEmbedding::new(vb.pp("add_embedding"), text_dim, ted, c.addition_embed_type_num_heads)?),
            Some(other) => crate::candle::bail!("UNet2DConditionModel: addition_embed_type `{other}` is not supported"),
            None => None,
        };
        let encoder_hid_proj = match (c.encoder_hid_dim, c.encoder_hid_dim_type.as_deref().unwrap_or("text_proj")) {
            (Some(dim), "text_proj") => Some(Linear::new(vb.pp("encoder_hid_proj"), dim, cross[0], true)?),
            (Some(_), other) => crate::candle::bail!("UNet2DConditionModel: encoder_hid_dim_type `{other}` is not supported"),
            (None, _) => None,
        };

        let mut down_blocks = Vec::with_capacity(n);
        let mut out_ch = c0;
        for (i, kind) in c.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = c.block_out_channels[i];
            let (attention, downsample_type, resnet) = block(kind, i, head_dims[i], tlayers[i])?;
            let dc = DownBlock2DConfig {
                in_channels: in_ch,
                out_channels: out_ch,
                temb_channels: Some(ted),
                num_layers: layers[i],
                resnet,
                add_downsample: i + 1 != n,
                downsample_padding: c.downsample_padding,
                downsample_type,
                attention,
            };
            down_blocks.push(DownBlock2D::new(vb.pp(format!("down_blocks.{i}")), &dc)?);
        }

        let last = c.block_out_channels[n - 1];
        let mid = |resnet: ResnetOptions, attention: BlockAttentionKind| -> Result<UNetMidBlock2D> {
            let mc = UNetMidBlock2DConfig { in_channels: last, temb_channels: Some(ted), num_layers: 1, resnet, attn_groups: Some(groups), attention };
            UNetMidBlock2D::new(vb.pp("mid_block"), &mc)
        };
        let mid_block = match c.mid_block_type.as_deref().map(block_name) {
            None => None,
            // diffusers gives this block neither `only_cross_attention` nor `resnet_skip_time_act`.
            Some("UNetMidBlock2DCrossAttn") => Some(mid(opts(c.mid_block_scale_factor, false), transformer(n - 1, tlayers[n - 1], false))?),
            Some("UNetMidBlock2DSimpleCrossAttn") => {
                let resnet = opts(c.mid_block_scale_factor, c.resnet_skip_time_act);
                Some(mid(resnet, added_kv(head_dims[n - 1], n - 1, c.mid_only_cross_attention()))?)
            }
            Some(other) => crate::candle::bail!("UNet2DConditionModel: mid_block_type `{other}` is not supported (UNetMidBlock2DCrossAttn, UNetMidBlock2DSimpleCrossAttn or null)"),
        };

        let rev = |v: &[usize]| -> Vec<usize> { v.iter().rev().copied().collect() };
        let rev_channels = rev(&c.block_out_channels);
        let rev_tlayers = match &c.reverse_transformer_layers_per_block {
            Some(v) if v.len() == n => v.clone(),
            Some(v) => crate::candle::bail!("UNet2DConditionModel: reverse_transformer_layers_per_block has {} values for {n} blocks", v.len()),
            None => rev(&tlayers),
        };
        let mut up_blocks = Vec::with_capacity(n);
        let mut out_ch = rev_channels[0];
        for (i, kind) in c.up_block_types.iter().enumerate() {
            let prev = out_ch;
            out_ch = rev_channels[i];
            let j = n - 1 - i; // the matching encoder level: per-block settings are reversed ...
            // ... except `attention_head_dim`, which diffusers does not reverse for the decoder.
            let (attention, upsample_type, resnet) = block(kind, j, head_dims[i], rev_tlayers[i])?;
            let uc = UpBlock2DConfig {
                in_channels: rev_channels[(i + 1).min(n - 1)],
                prev_output_channels: prev,
                out_channels: out_ch,
                temb_channels: Some(ted),
                num_layers: layers[j] + 1,
                resnet,
                add_upsample: i + 1 != n,
                upsample_type,
                attention,
            };
            up_blocks.push(UpBlock2D::new(vb.pp(format!("up_blocks.{i}")), &uc)?);
        }
        let conv_norm_out = GroupNorm::new(vb.pp("conv_norm_out"), c0, groups, c.norm_eps)?;
        let conv_out = Conv2d::new(vb.pp("conv_out"), Conv2dConfig::plain(c0, c.out_channels, c.conv_out_kernel))?;
        Ok(Self {
            cfg: c.clone(),
            conv_in,
            time_proj: Timesteps::new(c0, c.flip_sin_to_cos, c.freq_shift),
            time_embedding,
            timestep_post_act: optional_act(&c.timestep_post_act)?,
            class_embedding,
            add_embedding,
            time_embed_act: optional_act(&c.time_embedding_act_fn)?,
            encoder_hid_proj,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_act: act,
            conv_out,
            dtype: vb.dtype(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNet2DConditionConfig {
        &self.cfg
    }

    /// Names of the traced stages in execution order (diffusers' `trace_modules`).
    pub fn module_order(&self) -> Vec<String> {
        super::trace_module_order(self.down_blocks.len(), self.mid_block.is_some(), self.up_blocks.len())
    }

    /// The sinusoid `t_emb` of `timesteps` (`[N]`) in the model's dtype, computed from the timesteps in `f32`
    /// for a half-precision model as diffusers does ([`crate::embedding_dtype`]).
    pub fn time_features(&self, timesteps: &Tensor) -> Result<Tensor> {
        self.time_proj.forward(&timesteps.to_dtype(crate::embedding_dtype(self.dtype))?)?.to_dtype(self.dtype)
    }

    /// The embedding the blocks receive: `act(time_embedding(t_emb) + class_embedding(labels) +
    /// add_embedding(context) + extra)` (the activation only with `time_embedding_act_fn`). `labels` is
    /// required exactly when the model has a class embedding, and of its kind; `context` (the raw text states
    /// `[N, L, encoder_hid_dim]`, padding included) when it has `addition_embed_type = "text"`; `extra`
    /// (`[N or 1, time_embed_dim]`) is added with them (a BOOT student's new embeddings).
    pub fn embedding(&self, timesteps: &Tensor, context: Option<&Tensor>, labels: Option<ClassLabels<'_>>, extra: Option<&Tensor>) -> crate::Result<Tensor> {
        let mut emb = self.time_embedding.forward(&self.time_features(timesteps)?)?;
        if let Some(a) = self.timestep_post_act {
            emb = a.forward(&emb)?;
        }
        let n = emb.dim(0)?;
        let class = match (&self.class_embedding, labels) {
            (Some(ClassEmbedding::Table(table)), Some(ClassLabels::Rows(l))) => {
                if l.len() != n {
                    anyhow::bail!("UNet2DConditionModel: {} class labels for a batch of {n}", l.len());
                }
                Some(table.forward(l)?.to_dtype(self.dtype)?)
            }
            (Some(ClassEmbedding::Timestep(mlp)), Some(ClassLabels::Timesteps(v))) => {
                if v.dims1()? != n {
                    anyhow::bail!("UNet2DConditionModel: {} class labels for a batch of {n}", v.dims1()?);
                }
                Some(mlp.forward(&self.time_features(v)?)?)
            }
            (Some(ClassEmbedding::Table(_)), Some(ClassLabels::Timesteps(_))) => anyhow::bail!("UNet2DConditionModel: the class embedding is a table (num_class_embeds): give class rows, not values"),
            (Some(ClassEmbedding::Timestep(_)), Some(ClassLabels::Rows(_))) => anyhow::bail!("UNet2DConditionModel: class_embed_type \"timestep\" embeds values (a tensor), not table rows"),
            (Some(_), None) => anyhow::bail!("UNet2DConditionModel: class_labels should be provided when the model has a class embedding"),
            (None, Some(_)) => anyhow::bail!("UNet2DConditionModel: the model has no class embedding, but class labels were given"),
            (None, None) => None,
        };
        if let Some(class) = class {
            emb = (emb + class)?;
        }
        if let Some(add) = &self.add_embedding {
            let ctx = context.ok_or_else(|| anyhow::anyhow!("UNet2DConditionModel: addition_embed_type \"text\" needs the text states"))?;
            emb = (emb + add.forward(&ctx.to_dtype(self.dtype)?)?)?;
        }
        if let Some(e) = extra {
            emb = emb.broadcast_add(e)?;
        }
        if let Some(a) = self.time_embed_act {
            emb = a.forward(&emb)?;
        }
        Ok(emb)
    }

    /// `UNet2DConditionModel(sample, timestep, encoder_hidden_states, class_labels=..,
    /// encoder_attention_mask=..).sample` for `x` (`[N, in_channels, H, W]`, `H` and `W` divisible by
    /// `2^(levels - 1)`), `timesteps` (`[N]`), the text states `context` (`[N, L, encoder_hid_dim]`, or
    /// `cross_attention_dim` without `encoder_hid_proj`) and their padding mask `context_mask` (`[N, L]`, 1 for
    /// tokens and 0 for padding; see [`UNet2DConditionModel::forward_with_embedding`]).
    pub fn forward(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        context: &Tensor,
        context_mask: Option<&Tensor>,
        labels: Option<ClassLabels<'_>>,
        extra: Option<&Tensor>,
    ) -> crate::Result<Tensor> {
        let emb = self.embedding(timesteps, Some(context), labels, extra)?;
        Ok(self.forward_with_embedding(x, &emb, context, context_mask, &mut |_, _| Ok(()))?)
    }

    /// The network body for a given embedding; `trace` sees each stage's output (named as
    /// [`UNet2DConditionModel::module_order`]). The text states go through `encoder_hid_proj`, if any, and
    /// `context_mask` becomes a bias of -10000 on the padded tokens in the IF attention layers (as diffusers'
    /// `encoder_attention_mask`; the text pooling of [`UNet2DConditionModel::embedding`] sees every token, as in
    /// diffusers). A mask with the SD transformer blocks is refused.
    pub fn forward_with_embedding(&self, x: &Tensor, emb: &Tensor, context: &Tensor, context_mask: Option<&Tensor>, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let factor = 1usize << (self.up_blocks.len() - 1);
        let (_, _, h, w) = x.dims4()?;
        if !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
            crate::candle::bail!("UNet2DConditionModel: input size {h}x{w} is not divisible by {factor}");
        }
        let x = if self.cfg.center_input_sample { ((x * 2.0)? - 1.0)? } else { x.clone() };
        let ctx = context.to_dtype(self.dtype)?;
        let ctx = match &self.encoder_hid_proj {
            Some(p) => p.forward(&ctx)?,
            None => ctx,
        };
        let bias = match context_mask {
            Some(m) => {
                let (n, l) = (ctx.dim(0)?, ctx.dim(1)?);
                if m.dims() != [n, l] {
                    crate::candle::bail!("UNet2DConditionModel: encoder_attention_mask has shape {:?}, the text states {:?}", m.dims(), ctx.dims());
                }
                let work = if self.dtype == DType::F64 { DType::F64 } else { DType::F32 };
                Some(((1.0 - m.to_dtype(work)?)? * MASK_BIAS)?)
            }
            None => None,
        };
        let (ctx, bias) = (Some(&ctx), bias.as_ref());
        let mut h = self.conv_in.forward(&x)?;
        trace("conv_in", &h)?;
        let mut skips = vec![h.clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            let (out, res) = block.forward(&h, Some(emb), ctx, bias)?;
            h = out;
            skips.extend(res);
            trace(&format!("down_blocks.{i}"), &h)?;
        }
        if let Some(m) = &self.mid_block {
            h = m.forward(&h, Some(emb), ctx, bias)?;
            trace("mid_block", &h)?;
        }
        for (i, block) in self.up_blocks.iter().enumerate() {
            h = block.forward(&h, &mut skips, Some(emb), ctx, bias)?;
            trace(&format!("up_blocks.{i}"), &h)?;
        }
        h = self.conv_norm_out.forward(&h)?;
        trace("conv_norm_out", &h)?;
        let out = self.conv_out.forward(&self.conv_act.forward(&h)?)?;
        trace("conv_out", &out)?;
        Ok(out)
    }
}
