//! diffusers' `DownBlock2D`, `AttnDownBlock2D`, `CrossAttnDownBlock2D`, and DeepFloyd IF's
//! `ResnetDownsampleBlock2D` and `SimpleCrossAttnDownBlock2D` (`models/unets/unet_2d_blocks.py`): one encoder
//! level of a UNet, as one type (the attention layers and the down-sampler are what tells them apart).

use super::block_attention::{BlockAttention, BlockAttentionKind};
use super::resample::Downsample2D;
use super::resnet::{ResnetBlock2D, ResnetBlock2DConfig, ResnetOptions};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// How a block resamples between levels (`downsample_type` / `upsample_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleType {
    /// A stride-2 (down) or nearest-then-3x3 (up) convolution.
    Conv,
    /// A whole `ResnetBlock2D` with `down=True` / `up=True`.
    Resnet,
}

impl ResampleType {
    /// Parses diffusers' `"conv"` / `"resnet"`.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "conv" => ResampleType::Conv,
            "resnet" => ResampleType::Resnet,
            other => crate::candle::bail!("unsupported resample type `{other}` (expected conv or resnet)"),
        })
    }
}

/// Options of a [`DownBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownBlock2DConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Width of the time embedding.
    pub temb_channels: Option<usize>,
    /// Resnets (each followed by the attention layer, if any).
    pub num_layers: usize,
    /// Settings of the resnets.
    pub resnet: ResnetOptions,
    /// Down-sample at the end of the block.
    pub add_downsample: bool,
    /// Padding of the down-sampling convolution.
    pub downsample_padding: usize,
    /// How to down-sample: a convolution, or a resnet (`AttnDownBlock2D` with `downsample_type = "resnet"`,
    /// `ResnetDownsampleBlock2D`, `SimpleCrossAttnDownBlock2D`).
    pub downsample_type: ResampleType,
    /// The attention after each resnet: none (`DownBlock2D`, `ResnetDownsampleBlock2D`), spatial
    /// (`AttnDownBlock2D`), a transformer (`CrossAttnDownBlock2D`) or added-KV (`SimpleCrossAttnDownBlock2D`).
    pub attention: BlockAttentionKind,
}

#[derive(Debug, Clone)]
enum Downsampler {
    Conv(Downsample2D),
    Resnet(Box<ResnetBlock2D>),
}

/// `DownBlock2D` / `AttnDownBlock2D` / `CrossAttnDownBlock2D` / `ResnetDownsampleBlock2D` /
/// `SimpleCrossAttnDownBlock2D`. Keys: `resnets.i`, `attentions.i`,
/// `downsamplers.0`.
#[derive(Debug, Clone)]
pub struct DownBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
    downsampler: Option<Downsampler>,
}

impl DownBlock2D {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: &DownBlock2DConfig) -> Result<Self> {
        let (cout, r) = (cfg.out_channels, cfg.resnet);
        let mut resnets = Vec::with_capacity(cfg.num_layers);
        let mut attentions = Vec::new();
        for i in 0..cfg.num_layers {
            let cin = if i == 0 { cfg.in_channels } else { cout };
            resnets.push(ResnetBlock2D::new(vb.pp(format!("resnets.{i}")), r.block(cin, cout, cfg.temb_channels))?);
            if let Some(a) = BlockAttention::new(vb.pp(format!("attentions.{i}")), cfg.attention, cout, Some(r.groups), r.eps, r.output_scale_factor)? {
                attentions.push(a);
            }
        }
        let downsampler = if !cfg.add_downsample {
            None
        } else {
            let vb = vb.pp("downsamplers.0");
            Some(match cfg.downsample_type {
                ResampleType::Resnet => Downsampler::Resnet(Box::new(ResnetBlock2D::new(vb, ResnetBlock2DConfig { down: true, ..r.block(cout, cout, cfg.temb_channels) })?)),
                ResampleType::Conv => Downsampler::Conv(Downsample2D::new(vb, cout, true, cout, cfg.downsample_padding)?),
            })
        };
        Ok(Self { resnets, attentions, downsampler })
    }

    /// Runs the block (`context`: the cross-attention's `encoder_hidden_states`, `context_bias` the additive
    /// mask of its tokens, see [`BlockAttention::forward`]): returns the hidden state and the skip outputs it
    /// adds (one per resnet, and the down-sampler's).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>, context: Option<&Tensor>, context_bias: Option<&Tensor>) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut outputs = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, temb)?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h, context, context_bias)?;
            }
            outputs.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = match d {
                Downsampler::Conv(c) => c.forward(&h)?,
                Downsampler::Resnet(r) => r.forward(&h, temb)?,
            };
            outputs.push(h.clone());
        }
        Ok((h, outputs))
    }
}
