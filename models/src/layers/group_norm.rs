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
        self.forward_modulated(x, None, false)
    }

    /// `act(self.forward(x) * (1 + scale) + shift)` as one fused op with a fused backward: the UNets'
    /// "normalise, modulate, activate" step (ADM's `use_scale_shift_norm`, EDM's `adaptive_scale`,
    /// diffusers' `scale_shift`) and, without `scale_shift`, the plain `silu(norm(x))`.
    ///
    /// `scale_shift`: per (sample, channel) `scale` and `shift`, each `[B, C]` or `[B, C, 1, 1]` (a batch of
    /// 1 broadcasts), any float dtype; `None` skips the modulation. `act` is SiLU when `silu`, else the
    /// identity. All arithmetic is in `f32` (`f64` for `f64` inputs) and the result is rounded once to `x`'s
    /// dtype; gradients flow to `x`, the weight, the bias, `scale` and `shift`.
    pub fn forward_modulated(&self, x: &Tensor, scale_shift: Option<(&Tensor, &Tensor)>, silu: bool) -> Result<Tensor> {
        boot_sdk::ops::group_norm(x, &self.weight, &self.bias, self.num_groups, self.eps, scale_shift, silu)
    }
}
