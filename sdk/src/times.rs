//! Per-sample diffusion times together with the schedule values at those times.

use crate::candle::{DType, Device, Tensor};
use crate::NoiseSchedule;

/// A batch of times `t` (one per sample) with `alpha_t`, `sigma_t` and `lambda_t` from the run's schedule.
///
/// Teachers read whichever they need: the analytic teacher uses `alpha` and `sigma`, EDM uses
/// `sigma / alpha`, discrete-time teachers map `lambda` to their own timestep.
#[derive(Debug, Clone, PartialEq)]
pub struct Times {
    /// Continuous time in `[0, 1]`.
    pub t: Vec<f64>,
    /// Signal scale `alpha_t`.
    pub alpha: Vec<f64>,
    /// Noise scale `sigma_t`; `alpha^2 + sigma^2 = 1`.
    pub sigma: Vec<f64>,
    /// Negative half log-SNR `lambda_t = log(sigma_t / alpha_t)`.
    pub lambda: Vec<f64>,
}

impl Times {
    /// Evaluates `schedule` at each of `t`.
    pub fn new(schedule: &dyn NoiseSchedule, t: Vec<f64>) -> Self {
        let alpha: Vec<f64> = t.iter().map(|&t| schedule.alpha(t)).collect();
        let sigma: Vec<f64> = t.iter().map(|&t| schedule.sigma(t)).collect();
        let lambda = t.iter().map(|&t| schedule.lambda(t)).collect();
        Self { t, alpha, sigma, lambda }
    }

    /// The same time for `n` samples.
    pub fn constant(schedule: &dyn NoiseSchedule, t: f64, n: usize) -> Self {
        Self::new(schedule, vec![t; n])
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// `x_t = alpha_t * y + sigma_t * eps`: the noisy image whose signal part is `y`.
    pub fn noisy(&self, y: &Tensor, eps: &Tensor) -> crate::Result<Tensor> {
        let a = column(&self.alpha, y.dtype(), y.device())?;
        let s = column(&self.sigma, y.dtype(), y.device())?;
        Ok((y.broadcast_mul(&a)? + eps.broadcast_mul(&s)?)?)
    }
}

/// Per-sample `values` as a `[B, 1, 1, 1]` tensor of `dtype` that broadcasts over images (rounded once,
/// from `f64`).
pub fn column(values: &[f64], dtype: DType, device: &Device) -> crate::Result<Tensor> {
    Ok(Tensor::from_vec(values.to_vec(), (values.len(), 1, 1, 1), device)?.to_dtype(dtype)?)
}

/// Per-sample `values` as a `[B]` tensor of `dtype` (rounded once, from `f64`).
pub fn vector(values: &[f64], dtype: DType, device: &Device) -> crate::Result<Tensor> {
    Ok(Tensor::from_vec(values.to_vec(), values.len(), device)?.to_dtype(dtype)?)
}
