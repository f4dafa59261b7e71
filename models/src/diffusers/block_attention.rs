//! The attention layer a UNet block puts after each resnet: none (`DownBlock2D`, `UpBlock2D`), spatial
//! self-attention (`AttnDownBlock2D`, `AttnUpBlock2D`, `UNetMidBlock2D`), a `Transformer2DModel` with
//! cross-attention to the text states (`CrossAttnDownBlock2D`, `CrossAttnUpBlock2D`,
//! `UNetMidBlock2DCrossAttn`), or DeepFloyd IF's attention with added text keys and values
//! (`SimpleCrossAttnDownBlock2D`, `SimpleCrossAttnUpBlock2D`, `UNetMidBlock2DSimpleCrossAttn`).

use super::added_kv_attention::{AddedKvAttention, AddedKvAttentionConfig};
use super::attention::{Attention, AttentionConfig};
use super::transformer_2d::{Transformer2DConfig, Transformer2DModel};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// Which attention a block has, with the settings that do not depend on the block's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockAttentionKind {
    /// No attention.
    None,
    /// Spatial self-attention with `head_dim` channels per head (diffusers' `attention_head_dim` of
    /// `UNet2DModel`); the group norm has the resnets' groups unless the block says otherwise.
    Spatial {
        /// Channels per head.
        head_dim: usize,
    },
    /// A `Transformer2DModel` with `heads` heads of `channels / heads` channels.
    Transformer {
        /// Number of heads (`num_attention_heads`; the legacy `attention_head_dim` of SD 1.x configs).
        heads: usize,
        /// Transformer blocks per layer (`transformer_layers_per_block`).
        layers: usize,
        /// Width of the context.
        cross_attention_dim: Option<usize>,
        /// Linear `proj_in` / `proj_out` (SD 2.x).
        use_linear_projection: bool,
        /// `attn1` attends to the context too.
        only_cross_attention: bool,
    },
    /// An [`AddedKvAttention`] with `channels / head_dim` heads over the text states; its `group_norm` has the
    /// resnets' groups.
    AddedKv {
        /// Channels per head (diffusers' `attention_head_dim` of the `SimpleCrossAttn` blocks).
        head_dim: usize,
        /// Width of the text states (`cross_attention_dim`).
        cross_attention_dim: usize,
        /// Groups of `norm_cross` (`cross_attention_norm = "group_norm"`), or none.
        cross_attention_norm_groups: Option<usize>,
        /// No self keys and values: the pixels attend to the text only.
        only_cross_attention: bool,
    },
}

/// A built block attention layer.
#[derive(Debug, Clone)]
pub enum BlockAttention {
    /// Spatial self-attention.
    Spatial(Attention),
    /// Transformer with cross-attention.
    Transformer(Box<Transformer2DModel>),
    /// Attention with added text keys and values.
    AddedKv(Box<AddedKvAttention>),
}

impl BlockAttention {
    /// Builds the layer of `kind` over `channels` channels (`None` for [`BlockAttentionKind::None`]).
    /// `norm_groups` / `eps` are the group norm's (spatial: `None` = no norm; transformer and added-KV: its
    /// groups, the added-KV norm's eps is diffusers' fixed 1e-5), `rescale_output_factor` the spatial
    /// attention's output divisor.
    pub fn new(vb: VarBuilder, kind: BlockAttentionKind, channels: usize, norm_groups: Option<usize>, eps: f64, rescale_output_factor: f64) -> Result<Option<Self>> {
        Ok(match kind {
            BlockAttentionKind::None => None,
            BlockAttentionKind::Spatial { head_dim } => {
                Some(BlockAttention::Spatial(Attention::new(vb, AttentionConfig::spatial(channels, head_dim, norm_groups, eps, rescale_output_factor)?)?))
            }
            BlockAttentionKind::Transformer { heads, layers, cross_attention_dim, use_linear_projection, only_cross_attention } => {
                if heads == 0 || !channels.is_multiple_of(heads) {
                    crate::candle::bail!("transformer: {channels} channels cannot be split into {heads} heads");
                }
                let groups = norm_groups.ok_or_else(|| crate::candle::Error::Msg("transformer: a group count is required".into()))?;
                let cfg = Transformer2DConfig {
                    num_attention_heads: heads,
                    attention_head_dim: channels / heads,
                    in_channels: channels,
                    num_layers: layers,
                    cross_attention_dim,
                    norm_num_groups: groups,
                    use_linear_projection,
                    only_cross_attention,
                };
                Some(BlockAttention::Transformer(Box::new(Transformer2DModel::new(vb, &cfg)?)))
            }
            BlockAttentionKind::AddedKv { head_dim, cross_attention_dim, cross_attention_norm_groups, only_cross_attention } => {
                let groups = norm_groups.ok_or_else(|| crate::candle::Error::Msg("attention with added keys and values: a group count is required".into()))?;
                let cfg = AddedKvAttentionConfig {
                    query_dim: channels,
                    dim_head: head_dim,
                    added_kv_proj_dim: cross_attention_dim,
                    norm_num_groups: groups,
                    cross_attention_norm_groups,
                    only_cross_attention,
                };
                Some(BlockAttention::AddedKv(Box::new(AddedKvAttention::new(vb, cfg)?)))
            }
        })
    }

    /// Applies the layer to `x` (`[B, C, H, W]`); `context` is the cross-attention's `encoder_hidden_states`,
    /// `context_bias` (`[B, L]`: 0, or -10000 on padding) the additive mask of its tokens (added-KV attention
    /// only: a transformer refuses one).
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>, context_bias: Option<&Tensor>) -> Result<Tensor> {
        match self {
            BlockAttention::Spatial(a) => a.forward(x, None),
            BlockAttention::Transformer(_) if context_bias.is_some() => {
                crate::candle::bail!("encoder_attention_mask is not supported by this port's Transformer2DModel (CrossAttn blocks)")
            }
            BlockAttention::Transformer(t) => t.forward(x, context),
            BlockAttention::AddedKv(a) => {
                let ctx = context.ok_or_else(|| crate::candle::Error::Msg("attention with added keys and values needs encoder_hidden_states".into()))?;
                a.forward(x, ctx, context_bias)
            }
        }
    }
}
