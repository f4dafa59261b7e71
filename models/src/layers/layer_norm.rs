//! Layer normalisation over the last axis (`torch.nn.LayerNorm(dim, eps, elementwise_affine)`), built
//! from plain tensor ops so it is differentiable for students.

use crate::candle::{DType, Result, Tensor, D};
use crate::candle_nn::{Init, VarBuilder};

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last axis (biased variance). Keys: `weight [C]`,
/// `bias [C]` when affine.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    affine: Option<(Tensor, Tensor)>,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of a `dim`-wide norm (none when `elementwise_affine` is false).
    pub fn new(vb: VarBuilder, dim: usize, eps: f64, elementwise_affine: bool) -> Result<Self> {
        let affine = if elementwise_affine {
            Some((vb.get_with_hints(dim, "weight", Init::Const(1.0))?, vb.get_with_hints(dim, "bias", Init::Const(0.0))?))
        } else {
            None
        };
        Ok(Self { affine, eps })
    }

    /// Normalises `x` (`[.., C]`); half-precision inputs are normalised in `f32`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let work = match dtype {
            DType::F16 | DType::BF16 => DType::F32,
            d => d,
        };
        let x = x.to_dtype(work)?;
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let mut y = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        if let Some((w, b)) = &self.affine {
            y = y.broadcast_mul(&w.to_dtype(work)?)?.broadcast_add(&b.to_dtype(work)?)?;
        }
        y.to_dtype(dtype)
    }
}
