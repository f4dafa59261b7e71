//! Pointwise activations by the names diffusers and transformers configs use (`act_fn`, `hidden_act`).

use crate::GroupNorm;
use crate::candle::{Result, Tensor};

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)` (`"silu"`, `"swish"`), [`boot_sdk::ops::silu`].
    Silu,
    /// Exact (erf) GELU (`"gelu"`), as `torch.nn.GELU()`.
    Gelu,
    /// `x * sigmoid(1.702 x)` (`"quick_gelu"`, OpenAI CLIP's and SD 1.x's text encoder).
    QuickGelu,
    /// `x * tanh(softplus(x))` (`"mish"`).
    Mish,
    /// `max(x, 0)` (`"relu"`).
    Relu,
}

impl Activation {
    /// Parses a diffusers activation name; unknown names are an error naming the accepted ones.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "silu" | "swish" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "quick_gelu" => Activation::QuickGelu,
            "mish" => Activation::Mish,
            "relu" => Activation::Relu,
            other => crate::candle::bail!("unknown activation `{other}` (expected silu, swish, gelu, quick_gelu, mish or relu)"),
        })
    }

    /// Applies the activation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Silu => boot_sdk::ops::silu(x),
            Activation::Gelu => x.gelu_erf(),
            Activation::QuickGelu => x * boot_sdk::candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Activation::Mish => {
                // softplus(x) = log(1 + exp(x)), computed stably as max(x, 0) + log(1 + exp(-|x|)).
                let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                x * softplus.tanh()?
            }
            Activation::Relu => x.relu(),
        }
    }

    /// `self(norm(x) * (1 + scale) + shift)` ([`GroupNorm::forward_modulated`]; `scale_shift` `None`: no
    /// modulation): one fused op for SiLU, the norm then the activation for the others.
    pub fn after_group_norm(&self, norm: &GroupNorm, x: &Tensor, scale_shift: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
        match self {
            Activation::Silu => norm.forward_modulated(x, scale_shift, true),
            other => other.forward(&norm.forward_modulated(x, scale_shift, false)?),
        }
    }
}
