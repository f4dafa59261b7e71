//! Random Fourier feature embedding (EDM's `FourierEmbedding`, NCSN++): a fixed `freqs` buffer `[C/2]`
//! (`randn * scale` at construction) stored in the state dict.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// `emb(x) = [cos(2 pi x f_i) | sin(2 pi x f_i)]`. `2 pi f` is computed in the buffer's dtype before the cast
/// to the input's, as EDM does. Key: `freqs [C/2]` (a buffer).
#[derive(Debug, Clone)]
pub struct FourierEmbedding {
    freqs: Tensor,
}

impl FourierEmbedding {
    /// Reads the `freqs` buffer of a `num_channels`-wide embedding, in the embedding dtype of the network
    /// (`f32` for a half-precision one: frequencies up to ~50 stored in `bf16` put the angles radians off).
    pub fn new(vb: VarBuilder, num_channels: usize) -> Result<Self> {
        let dtype = crate::embedding_dtype(vb.dtype());
        Ok(Self { freqs: vb.get_with_hints_dtype(num_channels / 2, "freqs", Default::default(), dtype)? })
    }

    /// Wraps a `[C/2]` frequency tensor.
    pub fn from_tensor(freqs: Tensor) -> Self {
        Self { freqs }
    }

    /// The `[C/2]` frequencies.
    pub fn freqs(&self) -> &Tensor {
        &self.freqs
    }

    /// Embeds `x` (`[N]`) into `[N, C]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let f = (&self.freqs * (2.0 * std::f64::consts::PI))?.to_dtype(x.dtype())?;
        let angles = x.unsqueeze(1)?.broadcast_mul(&f.unsqueeze(0)?)?;
        Tensor::cat(&[angles.cos()?, angles.sin()?], 1)
    }
}
