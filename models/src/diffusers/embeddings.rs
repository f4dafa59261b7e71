//! diffusers' time embeddings: the `TimestepEmbedding` MLP and the `GaussianFourierProjection` noise-level
//! features. The sinusoid (`Timesteps`) is [`crate::embeddings::timesteps::Timesteps`].

use crate::candle::{DType, Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::activation::Activation;
use crate::Linear;

/// `TimestepEmbedding(in_channels, time_embed_dim, act_fn, out_dim)`: `linear_2(act(linear_1(x)))`.
/// Keys: `linear_1`, `linear_2`.
#[derive(Debug, Clone)]
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
    act: Activation,
}

impl TimestepEmbedding {
    /// Loads an MLP `in_channels -> time_embed_dim -> out_dim` (`out_dim` defaults to `time_embed_dim`).
    pub fn new(vb: VarBuilder, in_channels: usize, time_embed_dim: usize, out_dim: Option<usize>, act: Activation) -> Result<Self> {
        Ok(Self {
            linear_1: Linear::new(vb.pp("linear_1"), in_channels, time_embed_dim, true)?,
            linear_2: Linear::new(vb.pp("linear_2"), time_embed_dim, out_dim.unwrap_or(time_embed_dim), true)?,
            act,
        })
    }

    /// Applies the MLP to `x` (`[N, in_channels]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&self.act.forward(&self.linear_1.forward(x)?)?)
    }
}

/// `GaussianFourierProjection` as diffusers' score-SDE UNets use it (`log = true`): features
/// `[sin(2 pi ln(sigma) W) | cos(2 pi ln(sigma) W)]` (`[cos | sin]` with `flip_sin_to_cos`).
/// Key: `weight [C]` (a frozen parameter, stored in the state dict).
#[derive(Debug, Clone)]
pub struct GaussianFourierProjection {
    weight: Tensor,
    log: bool,
    flip_sin_to_cos: bool,
}

impl GaussianFourierProjection {
    /// Loads `weight` of an `embedding_size`-wide projection (output width `2 * embedding_size`).
    pub fn new(vb: VarBuilder, embedding_size: usize, log: bool, flip_sin_to_cos: bool) -> Result<Self> {
        // In the network's embedding dtype (f32 for bf16): bf16 frequencies put the angles radians off.
        let dtype = crate::embedding_dtype(vb.dtype());
        Ok(Self { weight: vb.get_with_hints_dtype(embedding_size, "weight", Default::default(), dtype)?, log, flip_sin_to_cos })
    }

    /// Embeds noise levels `sigma` (`[N]`) into `[N, 2 C]`, computed as `((x W) 2) pi` in the input's
    /// dtype (float32 for half precision), as the original evaluates it.
    pub fn forward(&self, sigma: &Tensor) -> Result<Tensor> {
        let dtype = sigma.dtype();
        let work = match dtype {
            DType::F16 | DType::BF16 => DType::F32,
            d => d,
        };
        let mut x = sigma.to_dtype(work)?;
        if self.log {
            x = x.log()?;
        }
        let w = self.weight.to_dtype(work)?;
        let proj = ((x.unsqueeze(1)?.broadcast_mul(&w.unsqueeze(0)?)? * 2.0)? * std::f64::consts::PI)?;
        let (sin, cos) = (proj.sin()?, proj.cos()?);
        let out = if self.flip_sin_to_cos { Tensor::cat(&[cos, sin], 1)? } else { Tensor::cat(&[sin, cos], 1)? };
        out.to_dtype(dtype)
    }
}
