//! Sinusoidal ("positional") embedding of a scalar per sample, as EDM's `PositionalEmbedding`
//! (and DDPM/ADM timestep embeddings).

use crate::candle::{DType, Result, Tensor};

/// Order of the two halves of a sinusoidal embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinusoidOrder {
    /// `[cos | sin]` (EDM `PositionalEmbedding`, DhariwalUNet, guided-diffusion).
    CosSin,
    /// `[sin | cos]` (EDM's SongUNet, which swaps the halves after embedding).
    SinCos,
}

/// `emb(x) = [cos(x f_i) | sin(x f_i)]` with `f_i = (1 / max_positions)^(i / (C/2 - endpoint))`,
/// `i = 0 .. C/2`. No parameters.
///
/// In `f32` (and half precision) the frequency table is built in `f32` as EDM does; in `f64` it is built in
/// `f64` (ground truth; EDM's `.double()` would keep an `f32` table).
#[derive(Debug, Clone, PartialEq)]
pub struct PositionalEmbedding {
    /// Output width `C` (even).
    pub num_channels: usize,
    /// Longest period scale (10000).
    pub max_positions: f64,
    /// `true`: exponents run to exactly 1 (`i / (C/2 - 1)`), EDM's SongUNet; `false`: `i / (C/2)`.
    pub endpoint: bool,
    /// Which half comes first.
    pub order: SinusoidOrder,
}

impl PositionalEmbedding {
    /// EDM's SongUNet embedding: endpoint, halves swapped to `[sin | cos]`.
    pub fn edm_song(num_channels: usize) -> Self {
        Self { num_channels, max_positions: 10000.0, endpoint: true, order: SinusoidOrder::SinCos }
    }

    /// EDM's DhariwalUNet embedding (also guided-diffusion's): no endpoint, `[cos | sin]`.
    pub fn edm_dhariwal(num_channels: usize) -> Self {
        Self { num_channels, max_positions: 10000.0, endpoint: false, order: SinusoidOrder::CosSin }
    }

    /// The frequency table `[C/2]` in `dtype`.
    pub fn frequencies(&self, dtype: DType, device: &crate::candle::Device) -> Result<Tensor> {
        let half = self.num_channels / 2;
        let denom = half - usize::from(self.endpoint);
        if dtype == DType::F64 {
            let base = 1.0 / self.max_positions;
            let v: Vec<f64> = (0..half).map(|i| base.powf(i as f64 / denom.max(1) as f64)).collect();
            Tensor::from_vec(v, half, device)
        } else {
            let base = (1.0 / self.max_positions) as f32;
            let v: Vec<f32> = (0..half).map(|i| base.powf(i as f32 / denom.max(1) as f32)).collect();
            Tensor::from_vec(v, half, device)?.to_dtype(dtype)
        }
    }

    /// Embeds `x` (`[N]`) into `[N, C]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let freqs = self.frequencies(x.dtype(), x.device())?;
        let angles = x.unsqueeze(1)?.broadcast_mul(&freqs.unsqueeze(0)?)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        match self.order {
            SinusoidOrder::CosSin => Tensor::cat(&[cos, sin], 1),
            SinusoidOrder::SinCos => Tensor::cat(&[sin, cos], 1),
        }
    }
}
