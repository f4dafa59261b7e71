//! guided-diffusion's `UNetModel` (Dhariwal & Nichol's ADM; the ImageNet-64 `64x64_diffusion.pt` family),
//! with the original module names so a `state_dict` loads unconverted.

use serde::Deserialize;

use super::attention::{attention_heads, AttentionBlock};
use super::resample::{Downsample, Upsample};
use super::resblock::{group_norm32, ResBlock, ResBlockConfig};
use crate::candle::{DType, Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::embeddings::timesteps::Timesteps;
use boot_sdk::ops::silu;
use crate::{ClassEmbeddingTable, Conv2d, Conv2dConfig, GroupNorm, Linear};

/// `UNetModel` constructor arguments with the original defaults. `attention_resolutions` are
/// **downsample factors** (`image_size // resolution`), as `UNetModel` takes them (`create_model`
/// converts its resolution flags into these). `num_head_channels` / `num_heads_upsample` use -1 for
/// "unset", as the original.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetModelConfig {
    /// Input resolution (informational: the network is fully convolutional).
    pub image_size: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Base channel count.
    pub model_channels: usize,
    /// Output channels (`2 * in_channels` with a learned variance).
    pub out_channels: usize,
    /// Residual blocks per level.
    pub num_res_blocks: usize,
    /// Downsample factors at which attention is used.
    pub attention_resolutions: Vec<usize>,
    /// Dropout (training only; ignored).
    #[serde(default)]
    pub dropout: f64,
    /// Channel multiplier per level (may be fractional, as `0.5` for the 512 model).
    #[serde(default = "default_channel_mult")]
    pub channel_mult: Vec<f64>,
    /// Learned 3x3 convolutions in the stand-alone up/down-samplers.
    #[serde(default = "yes")]
    pub conv_resample: bool,
    /// Signal dimensionality; only 2 is supported.
    #[serde(default = "two")]
    pub dims: usize,
    /// Rows of the class embedding table; `None` = unconditional.
    #[serde(default)]
    pub num_classes: Option<usize>,
    /// Gradient checkpointing (training only; ignored).
    #[serde(default)]
    pub use_checkpoint: bool,
    /// Half-precision torso (the saved weights are float32 either way; ignored).
    #[serde(default)]
    pub use_fp16: bool,
    /// Heads per attention block when `num_head_channels` is -1.
    #[serde(default = "one")]
    pub num_heads: i64,
    /// Channels per head (-1: use `num_heads`).
    #[serde(default = "minus_one")]
    pub num_head_channels: i64,
    /// Heads in the decoder's attention blocks (-1: `num_heads`).
    #[serde(default = "minus_one")]
    pub num_heads_upsample: i64,
    /// FiLM-style timestep conditioning in the residual blocks.
    #[serde(default)]
    pub use_scale_shift_norm: bool,
    /// Residual blocks (instead of stand-alone layers) for up/down-sampling.
    #[serde(default)]
    pub resblock_updown: bool,
    /// `QKVAttention` (true) or `QKVAttentionLegacy` (false) qkv order.
    #[serde(default)]
    pub use_new_attention_order: bool,
}

fn default_channel_mult() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 8.0]
}
fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}
fn one() -> i64 {
    1
}
fn minus_one() -> i64 {
    -1
}

impl UNetModelConfig {
    /// Width of the timestep embedding (`4 * model_channels`), where class labels are added.
    pub fn time_embed_dim(&self) -> usize {
        4 * self.model_channels
    }

    fn channels(&self, mult: f64) -> usize {
        (mult * self.model_channels as f64) as usize
    }

    fn heads(&self, channels: usize, num_heads: i64) -> Result<usize> {
        let head_channels = usize::try_from(self.num_head_channels).ok();
        if num_heads <= 0 && head_channels.is_none() {
            crate::candle::bail!("UNetModel: num_heads must be positive when num_head_channels is -1");
        }
        attention_heads(channels, num_heads.max(0) as usize, head_channels)
    }
}

/// One layer of a `TimestepEmbedSequential`.
#[derive(Debug, Clone)]
enum Layer {
    Conv(Conv2d),
    Res(Box<ResBlock>),
    Attn(AttentionBlock),
    Down(Downsample),
    Up(Upsample),
}

impl Layer {
    fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        match self {
            Layer::Conv(c) => c.forward(x),
            Layer::Res(r) => r.forward(x, emb),
            Layer::Attn(a) => a.forward(x),
            Layer::Down(d) => d.forward(x),
            Layer::Up(u) => u.forward(x),
        }
    }
}

/// `TimestepEmbedSequential`: layers run in order, residual blocks also get the embedding.
#[derive(Debug, Clone)]
struct Sequential(Vec<Layer>);

impl Sequential {
    fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.0 {
            h = l.forward(&h, emb)?;
        }
        Ok(h)
    }
}

/// guided-diffusion's `UNetModel`. Keys: `time_embed.{0,2}`, `label_emb` (class-conditional),
/// `input_blocks.*`, `middle_block.*`, `output_blocks.*`, `out.{0,2}`.
#[derive(Debug, Clone)]
pub struct UNetModel {
    cfg: UNetModelConfig,
    time_proj: Timesteps,
    time_embed_0: Linear,
    time_embed_2: Linear,
    label_emb: Option<ClassEmbeddingTable>,
    input_blocks: Vec<Sequential>,
    middle_block: Sequential,
    output_blocks: Vec<Sequential>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
    dtype: DType,
}

impl UNetModel {
    /// Builds the network, reading its tensors from `vb` (keys as in the original `state_dict`).
    pub fn new(vb: VarBuilder, cfg: &UNetModelConfig) -> Result<Self> {
        let c = cfg;
        if c.dims != 2 {
            crate::candle::bail!("UNetModel: only dims = 2 is supported, got {}", c.dims);
        }
        if c.channel_mult.is_empty() || c.channel_mult.iter().any(|m| m.is_nan() || *m <= 0.0) {
            crate::candle::bail!("UNetModel: channel_mult must be a non-empty list of positive numbers, got {:?}", c.channel_mult);
        }
        let ted = c.time_embed_dim();
        let res = |vb: VarBuilder, cin: usize, cout: usize, up: bool, down: bool| -> Result<Layer> {
            let rc = ResBlockConfig { channels: cin, emb_channels: ted, out_channels: cout, use_scale_shift_norm: c.use_scale_shift_norm, up, down };
            Ok(Layer::Res(Box::new(ResBlock::new(vb, rc)?)))
        };
        let attn = |vb: VarBuilder, ch: usize, num_heads: i64| -> Result<Layer> {
            Ok(Layer::Attn(AttentionBlock::new(vb, ch, c.heads(ch, num_heads)?, c.use_new_attention_order)?))
        };
        let heads_up = if c.num_heads_upsample == -1 { c.num_heads } else { c.num_heads_upsample };

        let time_embed_0 = Linear::new(vb.pp("time_embed.0"), c.model_channels, ted, true)?;
        let time_embed_2 = Linear::new(vb.pp("time_embed.2"), ted, ted, true)?;
        let label_emb = match c.num_classes {
            Some(n) => Some(ClassEmbeddingTable::new(vb.pp("label_emb"), n, ted, None)?),
            None => None,
        };

        let vin = vb.pp("input_blocks");
        let mut ch = c.channels(c.channel_mult[0]);
        let input_ch = ch;
        let mut input_blocks = vec![Sequential(vec![Layer::Conv(Conv2d::new(vin.pp("0.0"), Conv2dConfig::plain(c.in_channels, ch, 3))?)])];
        let mut chans = vec![ch];
        let mut ds = 1usize;
        for (level, &mult) in c.channel_mult.iter().enumerate() {
            for _ in 0..c.num_res_blocks {
                let vb = vin.pp(input_blocks.len().to_string());
                let out = c.channels(mult);
                let mut layers = vec![res(vb.pp("0"), ch, out, false, false)?];
                ch = out;
                if c.attention_resolutions.contains(&ds) {
                    layers.push(attn(vb.pp("1"), ch, c.num_heads)?);
                }
                input_blocks.push(Sequential(layers));
                chans.push(ch);
            }
            if level != c.channel_mult.len() - 1 {
                let vb = vin.pp(input_blocks.len().to_string()).pp("0");
                let layer = if c.resblock_updown { res(vb, ch, ch, false, true)? } else { Layer::Down(Downsample::new(vb, ch, c.conv_resample)?) };
                input_blocks.push(Sequential(vec![layer]));
                chans.push(ch);
                ds *= 2;
            }
        }

        let vmid = vb.pp("middle_block");
        let middle_block = Sequential(vec![res(vmid.pp("0"), ch, ch, false, false)?, attn(vmid.pp("1"), ch, c.num_heads)?, res(vmid.pp("2"), ch, ch, false, false)?]);

        let vout = vb.pp("output_blocks");
        let mut output_blocks = Vec::new();
        for (level, &mult) in c.channel_mult.iter().enumerate().rev() {
            for i in 0..=c.num_res_blocks {
                let vb = vout.pp(output_blocks.len().to_string());
                let ich = chans.pop().ok_or_else(|| crate::candle::Error::Msg("UNetModel: skip channel stack underflow".into()))?;
                let out = c.channels(mult);
                let mut layers = vec![res(vb.pp("0"), ch + ich, out, false, false)?];
                ch = out;
                if c.attention_resolutions.contains(&ds) {
                    layers.push(attn(vb.pp(layers.len().to_string()), ch, heads_up)?);
                }
                if level > 0 && i == c.num_res_blocks {
                    let vb = vb.pp(layers.len().to_string());
                    layers.push(if c.resblock_updown { res(vb, ch, ch, true, false)? } else { Layer::Up(Upsample::new(vb, ch, c.conv_resample)?) });
                    ds /= 2;
                }
                output_blocks.push(Sequential(layers));
            }
        }
        let out_norm = group_norm32(vb.pp("out.0"), ch)?;
        let out_conv = Conv2d::new(vb.pp("out.2"), Conv2dConfig::plain(input_ch, c.out_channels, 3))?;
        Ok(Self {
            cfg: c.clone(),
            time_proj: Timesteps::adm(c.model_channels),
            time_embed_0,
            time_embed_2,
            label_emb,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm,
            out_conv,
            dtype: vb.dtype(),
        })
    }

    /// The constructor arguments.
    pub fn config(&self) -> &UNetModelConfig {
        &self.cfg
    }

    /// The sinusoidal timestep embedding `timestep_embedding(t, model_channels)` of `timesteps` (`[N]`).
    pub fn timestep_embedding(&self, timesteps: &Tensor) -> Result<Tensor> {
        self.time_proj.forward(timesteps)
    }

    /// Names of the traced stages in execution order: `input_blocks.i`, `middle_block`, `output_blocks.i`, `out`.
    pub fn module_order(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.input_blocks.len()).map(|i| format!("input_blocks.{i}")).collect();
        v.push("middle_block".into());
        v.extend((0..self.output_blocks.len()).map(|i| format!("output_blocks.{i}")));
        v.push("out".into());
        v
    }

    /// The embedding every block receives: `time_embed(timestep_embedding(t)) + label_emb(y) + extra`.
    /// `timesteps` (`[N]`) are the raw step indices (fractional values allowed). `labels` is required for
    /// a class-conditional net; a `None` entry embeds to zeros (no label term). `extra` (`[N or 1,
    /// time_embed_dim]`) is added last (a BOOT student's target-time and guidance embeddings).
    ///
    /// The embedding is computed in [`crate::embedding_dtype`] of the network's dtype (`f32` for a
    /// half-precision network, whose blocks cast it): pass `timesteps` in `f32` (or wider) to keep them exact.
    pub fn embedding(&self, timesteps: &Tensor, labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> crate::Result<Tensor> {
        let dtype = crate::embedding_dtype(self.dtype);
        let t_emb = self.timestep_embedding(&timesteps.to_dtype(dtype)?)?;
        let mut emb = self.time_embed_2.forward(&silu(&self.time_embed_0.forward(&t_emb)?)?)?;
        match (&self.label_emb, labels) {
            (Some(table), Some(l)) => {
                if l.len() != emb.dim(0)? {
                    anyhow::bail!("UNetModel: {} class labels for a batch of {}", l.len(), emb.dim(0)?);
                }
                emb = (emb + table.forward(l)?.to_dtype(dtype)?)?;
            }
            (Some(_), None) => anyhow::bail!("UNetModel: the model is class-conditional, but no labels were given"),
            (None, Some(_)) => anyhow::bail!("UNetModel: the model is unconditional, but labels were given"),
            (None, None) => {}
        }
        if let Some(e) = extra {
            emb = emb.broadcast_add(&e.to_dtype(dtype)?)?;
        }
        Ok(emb)
    }

    /// `UNetModel(x, timesteps, y)` (see [`UNetModel::embedding`]): `x [N, in_channels, H, W]` to
    /// `[N, out_channels, H, W]`.
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> crate::Result<Tensor> {
        let emb = self.embedding(timesteps, labels, extra)?;
        Ok(self.forward_with_embedding(x, &emb, &mut |_, _| Ok(()))?)
    }

    /// The network body for a given embedding `[N, time_embed_dim]`; `trace` sees each stage's output
    /// (named as [`UNetModel::module_order`]).
    pub fn forward_with_embedding(&self, x: &Tensor, emb: &Tensor, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = x.clone();
        for (i, m) in self.input_blocks.iter().enumerate() {
            h = m.forward(&h, emb)?;
            trace(&format!("input_blocks.{i}"), &h)?;
            hs.push(h.clone());
        }
        h = self.middle_block.forward(&h, emb)?;
        trace("middle_block", &h)?;
        for (i, m) in self.output_blocks.iter().enumerate() {
            let skip = hs.pop().ok_or_else(|| crate::candle::Error::Msg("UNetModel: skip stack underflow".into()))?;
            h = m.forward(&Tensor::cat(&[&h, &skip], 1)?, emb)?;
            trace(&format!("output_blocks.{i}"), &h)?;
        }
        let out = self.out_conv.forward(&self.out_norm.forward_modulated(&h, None, true)?)?;
        trace("out", &out)?;
        Ok(out)
    }
}
