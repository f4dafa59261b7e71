//! Post-processing of denoised targets: clipping and dynamic thresholding (Imagen).

use serde::Deserialize;

use crate::candle::{DType, Tensor, D};

/// How denoised teacher outputs are bounded before they enter a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields, tag = "kind")]
pub enum Threshold {
    /// Leave values as they are.
    #[default]
    None,
    /// Clamp to `[-1, 1]`.
    Clip,
    /// Dynamic thresholding, as diffusers' `DDPMScheduler._threshold_sample`: per sample,
    /// `s = clamp(quantile(|x|, percentile), 1, max_value)` (the quantile linearly interpolated between order
    /// statistics, as `torch.quantile`), then `clamp(x, -s, s) / s`; computed in `f32` (`f64` stays `f64`).
    Dynamic {
        /// Quantile of absolute values (diffusers' `dynamic_thresholding_ratio`), e.g. 0.995; IF: 0.95.
        percentile: f64,
        /// Upper bound of `s` (diffusers' `sample_max_value`; IF stage I: 1.5); default unbounded (Imagen).
        #[serde(default)]
        max_value: Option<f64>,
    },
}

impl Threshold {
    /// Applies the thresholding to `x` (`[B, ...]`).
    pub fn apply(&self, x: &Tensor) -> crate::Result<Tensor> {
        match *self {
            Threshold::None => Ok(x.clone()),
            Threshold::Clip => Ok(x.clamp(-1f32, 1f32)?),
            Threshold::Dynamic { percentile, max_value } => {
                let b = x.dim(0)?;
                let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
                let xw = x.to_dtype(work)?;
                let abs = xw.flatten_from(1)?.abs()?;
                let n = abs.dim(1)?;
                let sorted = abs.sort_last_dim(true)?.0;
                // torch.quantile's "linear" interpolation at position q (n - 1).
                let pos = percentile.clamp(0.0, 1.0) * (n - 1) as f64;
                let lo = (pos.floor() as usize).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                let frac = pos - lo as f64;
                let a = sorted.narrow(D::Minus1, lo, 1)?;
                let q = if frac > 0.0 && hi != lo { (&a + ((sorted.narrow(D::Minus1, hi, 1)? - &a)? * frac)?)? } else { a };
                let q = q.maximum(1f64)?;
                let q = match max_value {
                    Some(m) => q.minimum(m.max(1.0))?,
                    None => q,
                }; // [B, 1]
                let mut shape = vec![b];
                shape.extend(std::iter::repeat_n(1, x.rank() - 1));
                let s = q.reshape(shape)?;
                let out = xw.broadcast_minimum(&s)?.broadcast_maximum(&s.neg()?)?.broadcast_div(&s)?;
                Ok(out.to_dtype(x.dtype())?)
            }
        }
    }
}
