//! diffusers' `Transformer2DModel` for continuous (feature-map) inputs with `BasicTransformerBlock`s
//! (`models/transformers/transformer_2d.py`, `models/attention.py`): the cross-attention layer of Stable
//! Diffusion's `CrossAttnDownBlock2D` / `CrossAttnUpBlock2D` / `UNetMidBlock2DCrossAttn`.

use super::attention::{Attention, AttentionConfig};
use crate::candle::{Result, Tensor, D};
use crate::candle_nn::VarBuilder;
use crate::layers::layer_norm::LayerNorm;
use crate::{Conv2d, Conv2dConfig, GroupNorm, Linear};

/// `FeedForward(dim, activation_fn="geglu")`: `net.2(a * gelu(g))` with `[a | g] = net.0.proj(x)`, inner
/// width `4 dim`. Keys: `net.0.proj`, `net.2`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    proj: Linear,
    out: Linear,
}

impl FeedForward {
    /// Loads a GEGLU feed-forward of width `dim` with inner width `inner`.
    pub fn new(vb: VarBuilder, dim: usize, inner: usize) -> Result<Self> {
        Ok(Self { proj: Linear::new(vb.pp("net.0.proj"), dim, 2 * inner, true)?, out: Linear::new(vb.pp("net.2"), inner, dim, true)? })
    }

    /// Applies the layer to `x` (`[.., dim]`): the first half of the projection is the value, the second
    /// the gate (exact GELU).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.proj.forward(x)?;
        let inner = h.dim(D::Minus1)? / 2;
        let (value, gate) = (h.narrow(D::Minus1, 0, inner)?, h.narrow(D::Minus1, inner, inner)?);
        self.out.forward(&(value * gate.gelu_erf()?)?)
    }
}

/// Options of a [`Transformer2DModel`], named as diffusers' constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transformer2DConfig {
    /// Heads of every attention layer.
    pub num_attention_heads: usize,
    /// Channels per head.
    pub attention_head_dim: usize,
    /// Channels of the feature map.
    pub in_channels: usize,
    /// Number of `BasicTransformerBlock`s.
    pub num_layers: usize,
    /// Width of the context (`encoder_hidden_states`); `None`: no cross-attention layer.
    pub cross_attention_dim: Option<usize>,
    /// Groups of the input group norm (eps 1e-6).
    pub norm_num_groups: usize,
    /// `proj_in` / `proj_out` are linear layers over tokens (SD 2.x) instead of 1x1 convolutions (SD 1.x).
    pub use_linear_projection: bool,
    /// `attn1` attends to the context too (no self-attention).
    pub only_cross_attention: bool,
}

/// `BasicTransformerBlock` with layer norms: `x += attn1(norm1(x))`, `x += attn2(norm2(x), context)`,
/// `x += ff(norm3(x))`. Keys: `norm1`, `attn1`, `norm2`, `attn2`, `norm3`, `ff`.
#[derive(Debug, Clone)]
pub struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    cross: Option<(LayerNorm, Attention)>,
    norm3: LayerNorm,
    ff: FeedForward,
    only_cross_attention: bool,
}

impl BasicTransformerBlock {
    /// Loads a block of width `dim`.
    pub fn new(vb: VarBuilder, dim: usize, heads: usize, head_dim: usize, cross_attention_dim: Option<usize>, only_cross_attention: bool) -> Result<Self> {
        let attn = |cross: Option<usize>| AttentionConfig {
            query_dim: dim,
            cross_attention_dim: cross,
            heads,
            dim_head: head_dim,
            bias: false,
            out_bias: true,
            norm_num_groups: None,
            eps: 1e-5,
            residual_connection: false,
            rescale_output_factor: 1.0,
        };
        let attn1 = Attention::new(vb.pp("attn1"), attn(if only_cross_attention { cross_attention_dim } else { None }))?;
        let cross = match cross_attention_dim {
            Some(c) => Some((LayerNorm::new(vb.pp("norm2"), dim, 1e-5, true)?, Attention::new(vb.pp("attn2"), attn(Some(c)))?)),
            None => None,
        };
        Ok(Self {
            norm1: LayerNorm::new(vb.pp("norm1"), dim, 1e-5, true)?,
            attn1,
            cross,
            norm3: LayerNorm::new(vb.pp("norm3"), dim, 1e-5, true)?,
            ff: FeedForward::new(vb.pp("ff"), dim, 4 * dim)?,
            only_cross_attention,
        })
    }

    /// Applies the block to tokens `x` (`[B, L, dim]`) with `context` (`[B, Lc, cross_attention_dim]`).
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let self_ctx = if self.only_cross_attention { context } else { None };
        let mut h = (self.attn1.forward(&self.norm1.forward(x)?, self_ctx)? + x)?;
        if let Some((norm2, attn2)) = &self.cross {
            let ctx = context.ok_or_else(|| crate::candle::Error::Msg("BasicTransformerBlock: cross-attention needs encoder_hidden_states".into()))?;
            h = (attn2.forward(&norm2.forward(&h)?, Some(ctx))? + &h)?;
        }
        self.ff.forward(&self.norm3.forward(&h)?)? + h
    }
}

/// The projection in and out of the transformer: a 1x1 convolution or a linear layer over tokens.
#[derive(Debug, Clone)]
enum Projection {
    Conv(Conv2d),
    Linear(Linear),
}

/// `Transformer2DModel` over a feature map. Keys: `norm`, `proj_in`, `transformer_blocks.i`, `proj_out`.
#[derive(Debug, Clone)]
pub struct Transformer2DModel {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    /// Loads the model's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: &Transformer2DConfig) -> Result<Self> {
        let (c, inner) = (cfg.in_channels, cfg.num_attention_heads * cfg.attention_head_dim);
        let proj = |vb: VarBuilder, i: usize, o: usize| -> Result<Projection> {
            Ok(if cfg.use_linear_projection { Projection::Linear(Linear::new(vb, i, o, true)?) } else { Projection::Conv(Conv2d::new(vb, Conv2dConfig::plain(i, o, 1))?) })
        };
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                BasicTransformerBlock::new(
                    vb.pp(format!("transformer_blocks.{i}")),
                    inner,
                    cfg.num_attention_heads,
                    cfg.attention_head_dim,
                    cfg.cross_attention_dim,
                    cfg.only_cross_attention,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm: GroupNorm::new(vb.pp("norm"), c, cfg.norm_num_groups, 1e-6)?,
            proj_in: proj(vb.pp("proj_in"), c, inner)?,
            blocks,
            proj_out: proj(vb.pp("proj_out"), inner, c)?,
        })
    }

    /// Applies the model to `x` (`[B, C, H, W]`) with `context` (`[B, Lc, cross_attention_dim]`); returns
    /// `x + proj_out(blocks(proj_in(norm(x))))`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let to_tokens = |t: Tensor| -> Result<Tensor> {
            let c = t.dim(1)?;
            t.permute((0, 2, 3, 1))?.reshape((b, h * w, c))
        };
        let to_map = |t: Tensor| -> Result<Tensor> {
            let c = t.dim(2)?;
            t.reshape((b, h, w, c))?.permute((0, 3, 1, 2))?.contiguous()
        };
        let normed = self.norm.forward(x)?;
        let mut tokens = match &self.proj_in {
            Projection::Conv(p) => to_tokens(p.forward(&normed)?)?,
            Projection::Linear(p) => p.forward(&to_tokens(normed)?)?,
        };
        for block in &self.blocks {
            tokens = block.forward(&tokens, context)?;
        }
        let out = match &self.proj_out {
            Projection::Conv(p) => p.forward(&to_map(tokens)?)?,
            Projection::Linear(p) => to_map(p.forward(&tokens)?)?,
        };
        out + x
    }
}
