//! diffusers' `UNetMidBlock2D`, `UNetMidBlock2DCrossAttn` and DeepFloyd IF's `UNetMidBlock2DSimpleCrossAttn`
//! (`models/unets/unet_2d_blocks.py`): resnet, then (attention, resnet) pairs.

use super::block_attention::{BlockAttention, BlockAttentionKind};
use super::resnet::{ResnetBlock2D, ResnetOptions};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// Options of a [`UNetMidBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UNetMidBlock2DConfig {
    /// Channels (in = out).
    pub in_channels: usize,
    /// Width of the time embedding.
    pub temb_channels: Option<usize>,
    /// Number of (attention, resnet) pairs after the first resnet.
    pub num_layers: usize,
    /// Settings of the resnets.
    pub resnet: ResnetOptions,
    /// Groups of the attention's group norm; `None`: no norm (spatial attention only; a transformer needs
    /// them). diffusers' rule for `UNetMidBlock2D`'s `attn_groups = None`: the resnet groups with the
    /// default time norm, no norm with `scale_shift`; `UNetMidBlock2DCrossAttn` and
    /// `UNetMidBlock2DSimpleCrossAttn` use the resnet groups.
    pub attn_groups: Option<usize>,
    /// The attention of each pair: spatial (`UNetMidBlock2D`), a transformer (`UNetMidBlock2DCrossAttn`),
    /// added-KV (`UNetMidBlock2DSimpleCrossAttn`), or none (`add_attention = False`).
    pub attention: BlockAttentionKind,
}

/// `UNetMidBlock2D` / `UNetMidBlock2DCrossAttn` / `UNetMidBlock2DSimpleCrossAttn`. Keys: `resnets.i`, `attentions.i`.
#[derive(Debug, Clone)]
pub struct UNetMidBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<BlockAttention>,
}

impl UNetMidBlock2D {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: &UNetMidBlock2DConfig) -> Result<Self> {
        let (c, r) = (cfg.in_channels, cfg.resnet);
        let mut resnets = vec![ResnetBlock2D::new(vb.pp("resnets.0"), r.block(c, c, cfg.temb_channels))?];
        let mut attentions = Vec::new();
        for i in 0..cfg.num_layers {
            if let Some(a) = BlockAttention::new(vb.pp(format!("attentions.{i}")), cfg.attention, c, cfg.attn_groups, r.eps, r.output_scale_factor)? {
                attentions.push(a);
            }
            resnets.push(ResnetBlock2D::new(vb.pp(format!("resnets.{}", i + 1)), r.block(c, c, cfg.temb_channels))?);
        }
        Ok(Self { resnets, attentions })
    }

    /// Runs the block on `x` (`[B, C, H, W]`); `context` is the cross-attention's `encoder_hidden_states`,
    /// `context_bias` the additive mask of its tokens (see [`BlockAttention::forward`]).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>, context: Option<&Tensor>, context_bias: Option<&Tensor>) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            if i > 0 {
                if let Some(a) = self.attentions.get(i - 1) {
                    h = a.forward(&h, context, context_bias)?;
                }
            }
            h = resnet.forward(&h, temb)?;
        }
        Ok(h)
    }
}
