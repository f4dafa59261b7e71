//! diffusers' `UpBlock2D`, `AttnUpBlock2D`, `CrossAttnUpBlock2D`, and DeepFloyd IF's `ResnetUpsampleBlock2D`
//! and `SimpleCrossAttnUpBlock2D` (`models/unets/unet_2d_blocks.py`): one decoder level of a UNet, as one type
//! (the attention layers and the up-sampler are what tells them apart).

use super::block_attention::{BlockAttention, BlockAttentionKind};
use super::down_blocks::ResampleType;
use super::resample::Upsample2D;
use super::resnet::{ResnetBlock2D, ResnetBlock2DConfig, ResnetOptions};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// Options of an [`UpBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpBlock2DConfig {
    /// Channels of the deepest skip this block consumes (the encoder level's input channels).
    pub in_channels: usize,
    /// Channels of the hidden state coming from the previous (deeper) block.
    pub prev_output_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Width of the time embedding.
    pub temb_channels: Option<usize>,
    /// Resnets (each followed by the attention layer, if any); `layers_per_block + 1` in a UNet.
    pub num_layers: usize,
    /// Settings of the resnets.
    pub resnet: ResnetOptions,
    /// Up-sample at the end of the block.
    pub add_upsample: bool,
    /// How to up-sample: a convolution, or a resnet (`AttnUpBlock2D` with `upsample_type = "resnet"`,
    /// `ResnetUpsampleBlock2D`, `SimpleCrossAttnUpBlock2D`).
    pub upsample_type: ResampleType,
    /// The attention after each resnet: none (`UpBlock2D`, `ResnetUpsampleBlock2D`), spatial
    /// (`AttnUpBlock2D`), a transformer (`CrossAttnUpBlock2D`) or added-KV (`SimpleCrossAttnUpBlock2D`).
    pub attention: BlockAttentionKind,
}

#[derive(Debug, Clone)]
enum Upsampler {
    Conv(Upsample2D),
    Resnet(Box<ResnetBlock2D>),
}

/// `UpBlock2D` / `AttnUpBlock2D` / `CrossAttnUpBlock2D` / `ResnetUpsampleBlock2D` / `SimpleCrossAttnUpBlock2D`.
/// Keys: `resnets.i`, `attentions.i`, `upsamplers.0`.
#[derive(Debug, Clone)]
pub struct UpBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
    upsampler: Option<Upsampler>,
}

impl UpBlock2D {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: &UpBlock2DConfig) -> Result<Self> {
        let (cout, r) = (cfg.out_channels, cfg.resnet);
        let mut resnets = Vec::with_capacity(cfg.num_layers);
        let mut attentions = Vec::new();
        for i in 0..cfg.num_layers {
            let skip = if i + 1 == cfg.num_layers { cfg.in_channels } else { cout };
            let cin = if i == 0 { cfg.prev_output_channels } else { cout };
            resnets.push(ResnetBlock2D::new(vb.pp(format!("resnets.{i}")), r.block(cin + skip, cout, cfg.temb_channels))?);
            if let Some(a) = BlockAttention::new(vb.pp(format!("attentions.{i}")), cfg.attention, cout, Some(r.groups), r.eps, r.output_scale_factor)? {
                attentions.push(a);
            }
        }
        let upsampler = if !cfg.add_upsample {
            None
        } else {
            let vb = vb.pp("upsamplers.0");
            Some(match cfg.upsample_type {
                ResampleType::Resnet => Upsampler::Resnet(Box::new(ResnetBlock2D::new(vb, ResnetBlock2DConfig { up: true, ..r.block(cout, cout, cfg.temb_channels) })?)),
                ResampleType::Conv => Upsampler::Conv(Upsample2D::new(vb, cout, true, cout)?),
            })
        };
        Ok(Self { resnets, attentions, upsampler })
    }

    /// Number of skip tensors the block consumes (one per resnet).
    pub fn num_skips(&self) -> usize {
        self.resnets.len()
    }

    /// Runs the block, popping one skip per resnet from the end of `skips` and concatenating it after the
    /// hidden state (`cat([h, skip], dim=1)`); `context` is the cross-attention's `encoder_hidden_states`,
    /// `context_bias` the additive mask of its tokens (see [`BlockAttention::forward`]).
    pub fn forward(&self, x: &Tensor, skips: &mut Vec<Tensor>, temb: Option<&Tensor>, context: Option<&Tensor>, context_bias: Option<&Tensor>) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            let s = skips.pop().ok_or_else(|| crate::candle::Error::Msg("up block: skip stack underflow".into()))?;
            h = resnet.forward(&Tensor::cat(&[&h, &s], 1)?, temb)?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h, context, context_bias)?;
            }
        }
        if let Some(u) = &self.upsampler {
            h = match u {
                Upsampler::Conv(c) => c.forward(&h)?,
                Upsampler::Resnet(r) => r.forward(&h, temb)?,
            };
        }
        Ok(h)
    }
}
