//! diffusers' `Attention` (`models/attention_processor.py`) with the default `AttnProcessor2_0`: the
//! spatial self-attention of `AttnDownBlock2D` / `AttnUpBlock2D` / `UNetMidBlock2D` (group norm, biased
//! projections, residual), and the plain self-/cross-attention of transformer blocks.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::{scaled_dot_product_attention, GroupNorm, Linear};

/// Options of an [`Attention`], named as diffusers' constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionConfig {
    /// Width of the queries (and of the output).
    pub query_dim: usize,
    /// Width of the context for cross-attention (`None`: self-attention, `query_dim`).
    pub cross_attention_dim: Option<usize>,
    /// Number of heads.
    pub heads: usize,
    /// Channels per head.
    pub dim_head: usize,
    /// Biases on `to_q`, `to_k`, `to_v`.
    pub bias: bool,
    /// Bias on `to_out.0`.
    pub out_bias: bool,
    /// Groups of the input group norm (`group_norm`), when there is one.
    pub norm_num_groups: Option<usize>,
    /// Group norm epsilon.
    pub eps: f64,
    /// Add the input to the output.
    pub residual_connection: bool,
    /// The output is divided by this.
    pub rescale_output_factor: f64,
}

impl AttentionConfig {
    /// The attention that `AttnDownBlock2D`, `AttnUpBlock2D` and `UNetMidBlock2D` build: `channels / head_dim`
    /// heads, biased projections, a group norm when `norm_num_groups` is set, residual, rescaled output.
    pub fn spatial(channels: usize, head_dim: usize, norm_num_groups: Option<usize>, eps: f64, rescale_output_factor: f64) -> Result<Self> {
        if head_dim == 0 || !channels.is_multiple_of(head_dim) {
            crate::candle::bail!("attention: {channels} channels cannot be split into heads of {head_dim}");
        }
        Ok(Self {
            query_dim: channels,
            cross_attention_dim: None,
            heads: channels / head_dim,
            dim_head: head_dim,
            bias: true,
            out_bias: true,
            norm_num_groups,
            eps,
            residual_connection: true,
            rescale_output_factor,
        })
    }
}

/// `Attention`. Keys: `group_norm` (optional), `to_q`, `to_k`, `to_v`, `to_out.0`. Checkpoints that still
/// use the deprecated attention-block names (`query`, `key`, `value`, `proj_attn`, e.g. google/ddpm-*)
/// load too, as diffusers' `_convert_deprecated_attention_blocks` renames them.
#[derive(Debug, Clone)]
pub struct Attention {
    group_norm: Option<GroupNorm>,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    cfg: AttentionConfig,
}

impl Attention {
    /// Loads the layer's tensors from `vb`, under the current names, or under the deprecated ones when the
    /// source holds `query.weight`.
    pub fn new(vb: VarBuilder, cfg: AttentionConfig) -> Result<Self> {
        let inner = cfg.heads * cfg.dim_head;
        let ctx = cfg.cross_attention_dim.unwrap_or(cfg.query_dim);
        let legacy = vb.contains_tensor("query.weight");
        let [q, k, v, out] = if legacy { ["query", "key", "value", "proj_attn"] } else { ["to_q", "to_k", "to_v", "to_out.0"] };
        let group_norm = match cfg.norm_num_groups {
            Some(g) => Some(GroupNorm::new(vb.pp("group_norm"), cfg.query_dim, g, cfg.eps)?),
            None => None,
        };
        Ok(Self {
            group_norm,
            to_q: Linear::new(vb.pp(q), cfg.query_dim, inner, cfg.bias)?,
            to_k: Linear::new(vb.pp(k), ctx, inner, cfg.bias)?,
            to_v: Linear::new(vb.pp(v), ctx, inner, cfg.bias)?,
            to_out: Linear::new(vb.pp(out), inner, cfg.query_dim, cfg.out_bias)?,
            cfg,
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &AttentionConfig {
        &self.cfg
    }

    /// Attention of `x` (`[B, C, H, W]` feature maps or `[B, L, C]` tokens) over itself, or over
    /// `context` (`[B, Lk, cross_attention_dim]`). The output has `x`'s shape.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let spatial = x.rank() == 4;
        let tokens = if spatial {
            let (b, c, h, w) = x.dims4()?;
            x.reshape((b, c, h * w))?.transpose(1, 2)?
        } else {
            x.clone()
        };
        let hidden = match &self.group_norm {
            Some(n) => n.forward(&tokens.transpose(1, 2)?)?.transpose(1, 2)?,
            None => tokens,
        };
        let ctx = context.unwrap_or(&hidden);
        let (b, lq, _) = hidden.dims3()?;
        let lk = ctx.dim(1)?;
        let (heads, d) = (self.cfg.heads, self.cfg.dim_head);
        let split = |t: Tensor, l: usize| -> Result<Tensor> { t.reshape((b, l, heads, d))?.transpose(1, 2)?.reshape((b * heads, l, d)) };
        let q = split(self.to_q.forward(&hidden)?, lq)?;
        let k = split(self.to_k.forward(ctx)?, lk)?;
        let v = split(self.to_v.forward(ctx)?, lk)?;
        let a = scaled_dot_product_attention(&q, &k, &v, None)?;
        let a = a.reshape((b, heads, lq, d))?.transpose(1, 2)?.reshape((b, lq, heads * d))?;
        let mut out = self.to_out.forward(&a)?;
        if spatial {
            let (b, c, h, w) = x.dims4()?;
            out = out.transpose(1, 2)?.reshape((b, c, h, w))?;
        }
        if self.cfg.residual_connection {
            out = (out + x)?;
        }
        if self.cfg.rescale_output_factor != 1.0 {
            out = (out / self.cfg.rescale_output_factor)?;
        }
        Ok(out)
    }
}
