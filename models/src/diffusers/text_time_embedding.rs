//! diffusers' `TextTimeEmbedding` and its `AttentionPooling` (`models/embeddings.py`, from DeepFloyd IF's
//! `deepfloyd_if/model/nn.py`): the text states pooled into one vector that `addition_embed_type = "text"`
//! adds to the time embedding.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::layer_norm::LayerNorm;
use crate::{scaled_dot_product_attention, Linear};

/// `AttentionPooling(num_heads, embed_dim)`: a class token (the mean of the tokens plus
/// `positional_embedding`) attends to itself and the tokens; its output is the pooled vector. Keys:
/// `positional_embedding [1, dim]`, `q_proj`, `k_proj`, `v_proj`.
#[derive(Debug, Clone)]
pub struct AttentionPooling {
    positional_embedding: Tensor,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    heads: usize,
}

impl AttentionPooling {
    /// Loads a pooling of `embed_dim`-wide tokens with `num_heads` heads.
    pub fn new(vb: VarBuilder, num_heads: usize, embed_dim: usize) -> Result<Self> {
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            crate::candle::bail!("AttentionPooling: {embed_dim} channels cannot be split into {num_heads} heads");
        }
        Ok(Self {
            positional_embedding: vb.get((1, embed_dim), "positional_embedding")?,
            q_proj: Linear::new(vb.pp("q_proj"), embed_dim, embed_dim, true)?,
            k_proj: Linear::new(vb.pp("k_proj"), embed_dim, embed_dim, true)?,
            v_proj: Linear::new(vb.pp("v_proj"), embed_dim, embed_dim, true)?,
            heads: num_heads,
        })
    }

    /// Pools `x` (`[B, L, dim]`, every token, padding included, as diffusers does) into `[B, dim]`. Heads
    /// split the channels head-major; the logits are scaled by `1/sqrt(d)` and the softmax is `f32`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, width) = x.dims3()?;
        let (heads, d) = (self.heads, width / self.heads);
        let class_token = x.mean_keepdim(1)?.broadcast_add(&self.positional_embedding.to_dtype(x.dtype())?)?;
        let tokens = Tensor::cat(&[&class_token, x], 1)?;
        let split = |t: Tensor, l: usize| -> Result<Tensor> { t.reshape((b, l, heads, d))?.transpose(1, 2)?.reshape((b * heads, l, d)) };
        let q = split(self.q_proj.forward(&class_token)?, 1)?;
        let k = split(self.k_proj.forward(&tokens)?, l + 1)?;
        let v = split(self.v_proj.forward(&tokens)?, l + 1)?;
        scaled_dot_product_attention(&q, &k, &v, None)?.reshape((b, width))
    }
}

/// `TextTimeEmbedding(encoder_dim, time_embed_dim, num_heads)`: `norm2(proj(pool(norm1(x))))`. Keys:
/// `norm1`, `pool`, `proj`, `norm2` (layer norms with eps 1e-5).
#[derive(Debug, Clone)]
pub struct TextTimeEmbedding {
    norm1: LayerNorm,
    pool: AttentionPooling,
    proj: Linear,
    norm2: LayerNorm,
}

impl TextTimeEmbedding {
    /// Loads an embedding of `encoder_dim`-wide text states into `time_embed_dim`.
    pub fn new(vb: VarBuilder, encoder_dim: usize, time_embed_dim: usize, num_heads: usize) -> Result<Self> {
        Ok(Self {
            norm1: LayerNorm::new(vb.pp("norm1"), encoder_dim, 1e-5, true)?,
            pool: AttentionPooling::new(vb.pp("pool"), num_heads, encoder_dim)?,
            proj: Linear::new(vb.pp("proj"), encoder_dim, time_embed_dim, true)?,
            norm2: LayerNorm::new(vb.pp("norm2"), time_embed_dim, 1e-5, true)?,
        })
    }

    /// Embeds the text states `x` (`[B, L, encoder_dim]`) into `[B, time_embed_dim]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.norm2.forward(&self.proj.forward(&self.pool.forward(&self.norm1.forward(x)?)?)?)
    }
}
