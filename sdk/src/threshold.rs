//! Post-processing of denoised targets: clipping and dynamic thresholding (Imagen).

use serde::Deserialize;

use crate::candle::{Tensor, D};

/// How denoised teacher outputs are bounded before they enter a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields, tag = "kind")]
pub enum Threshold {
    /// Leave values as they are.
    #[default]
    None,
    /// Clamp to `[-1, 1]`.
    Clip,
    /// Dynamic thresholding: per sample, `s = max(1, quantile(|x|, percentile))`, then `clamp(x, -s, s) / s`.
    Dynamic {
        /// Quantile of absolute values, e.g. 0.995.
        percentile: f64,
    },
}

impl Threshold {
    /// Applies the thresholding to `x` (`[B, ...]`).
    pub fn apply(&self, x: &Tensor) -> crate::Result<Tensor> {
        match *self {
            Threshold::None => Ok(x.clone()),
            Threshold::Clip => Ok(x.clamp(-1f32, 1f32)?),
            Threshold::Dynamic { percentile } => {
                let b = x.dim(0)?;
                let abs = x.flatten_from(1)?.abs()?.to_dtype(crate::candle::DType::F32)?;
                let n = abs.dim(1)?;
                let sorted = abs.sort_last_dim(true)?.0;
                let idx = ((percentile.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize).min(n - 1);
                let q = sorted.narrow(D::Minus1, idx, 1)?.maximum(1f32)?; // [B, 1]
                let mut shape = vec![b];
                shape.extend(std::iter::repeat_n(1, x.rank() - 1));
                let s = q.reshape(shape)?.to_dtype(x.dtype())?;
                Ok(x.broadcast_minimum(&s)?.broadcast_maximum(&s.neg()?)?.broadcast_div(&s)?)
            }
        }
    }
}
