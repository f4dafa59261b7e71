//! Batch normalisation in inference mode (`torch.nn.BatchNorm2d` after `.eval()`), over the channels of
//! `[B, C, H, W]`.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// `(x - running_mean) / sqrt(running_var + eps) * weight + bias` per channel, computed as PyTorch's
/// inference kernel does: one scale and one shift per channel. Keys: `weight`, `bias`, `running_mean`,
/// `running_var` (all `[C]`).
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm2d {
    /// Loads the four `[channels]` tensors and folds them into a scale and a shift.
    pub fn new(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        let weight = vb.get(channels, "weight")?;
        let bias = vb.get(channels, "bias")?;
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let scale = weight.div(&(var + eps)?.sqrt()?)?;
        let shift = bias.sub(&mean.mul(&scale)?)?;
        Ok(Self { scale: scale.reshape((1, channels, 1, 1))?, shift: shift.reshape((1, channels, 1, 1))? })
    }

    /// Normalises `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_mul(&self.scale.to_dtype(x.dtype())?)?.broadcast_add(&self.shift.to_dtype(x.dtype())?)
    }
}
