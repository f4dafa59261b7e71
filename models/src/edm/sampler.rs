//! EDM's deterministic/stochastic Heun sampler (`generate.py: edm_sampler`, Algorithm 2 of Karras et al.).
//! The sampler state is `f64` on the host side; each denoiser call may compute in any precision.

use boot_sdk::candle::{DType, Result, Tensor};

/// Settings of [`edm_sampler`], official defaults in [`HeunConfig::default`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeunConfig {
    /// Number of noise levels (network calls: `2 * num_steps - 1`).
    pub num_steps: usize,
    /// Smallest sigma (raised to the net's own `sigma_min`).
    pub sigma_min: f64,
    /// Largest sigma (lowered to the net's own `sigma_max`).
    pub sigma_max: f64,
    /// Spacing exponent.
    pub rho: f64,
    /// Stochasticity; 0 = deterministic.
    pub s_churn: f64,
    /// Churn applies for sigma in `[s_min, s_max]`.
    pub s_min: f64,
    /// See `s_min`.
    pub s_max: f64,
    /// Noise scale of the churn.
    pub s_noise: f64,
}

impl Default for HeunConfig {
    fn default() -> Self {
        Self { num_steps: 18, sigma_min: 0.002, sigma_max: 80.0, rho: 7.0, s_churn: 0.0, s_min: 0.0, s_max: f64::INFINITY, s_noise: 1.0 }
    }
}

/// The noise levels `t_0 > .. > t_{N-1}` and the final `t_N = 0`, in `f64` as `edm_sampler` computes them;
/// `net_sigma_min` / `net_sigma_max` are the denoiser's own limits.
pub fn edm_time_steps(cfg: &HeunConfig, net_sigma_min: f64, net_sigma_max: f64) -> Vec<f64> {
    let smin = cfg.sigma_min.max(net_sigma_min);
    let smax = cfg.sigma_max.min(net_sigma_max);
    let (a, b) = (smax.powf(1.0 / cfg.rho), smin.powf(1.0 / cfg.rho));
    let n = cfg.num_steps;
    let denom = (n.max(2) - 1) as f64;
    let mut t: Vec<f64> = (0..n).map(|i| (a + i as f64 / denom * (b - a)).powf(cfg.rho)).collect();
    t.push(0.0);
    t
}

/// Runs the Heun sampler from `latents` (standard normal, any float dtype; the state is kept in `f64`).
/// `denoise(x, sigma)` gets the `f64` state and one sigma for the whole batch and returns `D(x; sigma)`
/// (any dtype). `noise(x)` draws standard normal noise like `x`; it is only called when the churn is
/// non-zero (EDM draws it always and multiplies by 0).
pub fn edm_sampler(
    denoise: &mut dyn FnMut(&Tensor, f64) -> Result<Tensor>,
    latents: &Tensor,
    cfg: &HeunConfig,
    net_sigma_min: f64,
    net_sigma_max: f64,
    noise: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let t_steps = edm_time_steps(cfg, net_sigma_min, net_sigma_max);
    let n = cfg.num_steps;
    let mut x_next = (latents.to_dtype(DType::F64)? * t_steps[0])?;
    for i in 0..n {
        let (t_cur, t_next) = (t_steps[i], t_steps[i + 1]);
        let x_cur = x_next;
        let gamma = if cfg.s_min <= t_cur && t_cur <= cfg.s_max { (cfg.s_churn / n as f64).min(2f64.sqrt() - 1.0) } else { 0.0 };
        let t_hat = t_cur + gamma * t_cur;
        let x_hat = if gamma > 0.0 {
            let eps = noise(&x_cur)?.to_dtype(DType::F64)?;
            (&x_cur + (eps * ((t_hat * t_hat - t_cur * t_cur).sqrt() * cfg.s_noise))?)?
        } else {
            x_cur
        };
        let denoised = denoise(&x_hat, t_hat)?.to_dtype(DType::F64)?;
        let d_cur = ((&x_hat - &denoised)? / t_hat)?;
        x_next = (&x_hat + (&d_cur * (t_next - t_hat))?)?;
        if i < n - 1 {
            let denoised = denoise(&x_next, t_next)?.to_dtype(DType::F64)?;
            let d_prime = ((&x_next - &denoised)? / t_next)?;
            x_next = (&x_hat + ((&d_cur * 0.5)? + (d_prime * 0.5)?)?.affine(t_next - t_hat, 0.0)?)?;
        }
    }
    Ok(x_next)
}
