//! The sinusoidal timestep embedding of DDPM-family UNets: diffusers' `get_timestep_embedding` (the
//! `Timesteps` module) and guided-diffusion's `timestep_embedding`, which is the diffusers one with
//! `flip_sin_to_cos = true, downscale_freq_shift = 0`.

use crate::candle::{DType, Device, Result, Tensor};

/// `emb(t) = [sin(t f_i) | cos(t f_i)]` (or `[cos | sin]` with `flip_sin_to_cos`), with
/// `f_i = exp(-ln(max_period) * i / (C/2 - downscale_freq_shift))`, `i = 0 .. C/2`; an odd `C` gets a
/// trailing zero column. No parameters.
///
/// `t` is the raw timestep (guided-diffusion and diffusers both feed the step index in `[0, N)`,
/// fractional values are fine). For `f32` (and half precision) inputs the frequency table and the product
/// are computed in `f32` exactly as the PyTorch code orders them (`(-ln(max_period) * i) / (C/2 - shift)`,
/// then `exp`), then cast; for `f64` everything is `f64` (ground truth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timesteps {
    /// Output width `C`.
    pub num_channels: usize,
    /// Put the cosine half first (diffusers' default for its UNets; always so in guided-diffusion).
    pub flip_sin_to_cos: bool,
    /// Subtracted from `C/2` in the frequency exponent's divisor (diffusers `freq_shift`; 1 for
    /// google/ddpm-style models).
    pub downscale_freq_shift: f64,
    /// Factor applied to the angles' sinusoids' arguments (diffusers `scale`, 1 in UNets).
    pub scale: f64,
    /// Longest period (10000).
    pub max_period: f64,
}

impl Timesteps {
    /// diffusers' `Timesteps(num_channels, flip_sin_to_cos, downscale_freq_shift)`.
    pub fn new(num_channels: usize, flip_sin_to_cos: bool, downscale_freq_shift: f64) -> Self {
        Self { num_channels, flip_sin_to_cos, downscale_freq_shift, scale: 1.0, max_period: 10000.0 }
    }

    /// guided-diffusion's `timestep_embedding(t, dim)`: `[cos | sin]`, no frequency shift.
    pub fn adm(num_channels: usize) -> Self {
        Self::new(num_channels, true, 0.0)
    }

    /// The frequency table `[C/2]` in `f64` (for `f64` inputs) or `f32` (otherwise).
    fn frequencies(&self, work: DType, device: &Device) -> Result<Tensor> {
        let half = self.num_channels / 2;
        let divisor = half as f64 - self.downscale_freq_shift;
        if divisor <= 0.0 {
            crate::candle::bail!("timestep embedding: {} channels with freq_shift {} leave no frequencies", self.num_channels, self.downscale_freq_shift);
        }
        if work == DType::F64 {
            let l = -self.max_period.ln();
            let v: Vec<f64> = (0..half).map(|i| (l * i as f64 / divisor).exp()).collect();
            Tensor::from_vec(v, half, device)
        } else {
            let (l, d) = (-(self.max_period.ln() as f32), divisor as f32);
            let v: Vec<f32> = (0..half).map(|i| ((l * i as f32) / d).exp()).collect();
            Tensor::from_vec(v, half, device)
        }
    }

    /// Embeds `t` (`[N]`, any float dtype) into `[N, C]` in `t`'s dtype.
    pub fn forward(&self, t: &Tensor) -> Result<Tensor> {
        let dtype = t.dtype();
        let work = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let freqs = self.frequencies(work, t.device())?;
        let mut angles = t.to_dtype(work)?.unsqueeze(1)?.broadcast_mul(&freqs.unsqueeze(0)?)?;
        if self.scale != 1.0 {
            angles = (angles * self.scale)?;
        }
        let (sin, cos) = (angles.sin()?, angles.cos()?);
        let mut emb = if self.flip_sin_to_cos { Tensor::cat(&[cos, sin], 1)? } else { Tensor::cat(&[sin, cos], 1)? };
        if self.num_channels % 2 == 1 {
            let n = emb.dim(0)?;
            emb = Tensor::cat(&[emb, Tensor::zeros((n, 1), work, t.device())?], 1)?;
        }
        emb.to_dtype(dtype)
    }
}
