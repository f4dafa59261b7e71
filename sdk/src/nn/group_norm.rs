//! Group normalisation (`torch.nn.functional.group_norm`) with an affine `weight` / `bias` per channel.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// EDM's group count: `min(num_groups, channels / min_channels_per_group)` with the defaults 32 and 4,
/// i.e. `min(32, C / 4)` (EDM `GroupNorm`; 16 channels get 4 groups).
pub fn edm_num_groups(channels: usize) -> usize {
    32.min(channels / 4).max(1)
}

/// Group normalisation over `[B, C, ...]`: statistics per sample and group of `C / num_groups` channels
/// (biased variance), then `weight * x_hat + bias` per channel. Keys: `weight [C]`, `bias [C]`.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    num_groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// Loads `weight` and `bias` of a `channels`-wide norm with `num_groups` groups.
    pub fn new(vb: VarBuilder, channels: usize, num_groups: usize, eps: f64) -> Result<Self> {
        if num_groups == 0 || !channels.is_multiple_of(num_groups) {
            crate::candle::bail!("group norm: {channels} channels cannot be split into {num_groups} groups");
        }
        let weight = vb.get_with_hints(channels, "weight", crate::candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", crate::candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, num_groups, eps })
    }

    /// EDM's `GroupNorm(num_channels, eps)`: groups from [`edm_num_groups`].
    pub fn edm(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        Self::new(vb, channels, edm_num_groups(channels), eps)
    }

    /// Number of groups.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Normalises `x` (`[B, C, ...]`, any float dtype) in one fused op with a fused backward (`group_norm_op.rs`);
    /// half-precision inputs are normalised in `f32`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::group_norm_op::group_norm(x, &self.weight, &self.bias, self.num_groups, self.eps)
    }
}
