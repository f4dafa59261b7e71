//! The `N`-step beta schedule a discrete-time teacher was trained with (guided-diffusion's `cosine` and
//! `linear`, diffusers' `squaredcos_cap_v2`, `linear` and `scaled_linear`), and the map between the
//! framework's continuous time and the teacher's (fractional) timestep.
//!
//! Timestep `i = 0..N-1` has `alpha_bar_i = prod_{j <= i} (1 - beta_j)` and
//! `lambda_i = log(sigma_i / alpha_i) = 0.5 log((1 - alpha_bar_i) / alpha_bar_i)`. As a continuous
//! [`NoiseSchedule`] it places timestep `i` at `t = i / (N - 1)` and interpolates `lambda` linearly in
//! between (core's `linear` and `scaled-linear` schedules are this type), so `alpha^2 + sigma^2 = 1` holds
//! exactly. A teacher maps any `lambda` back to its fractional timestep with
//! [`BetaSchedule::timestep_of_lambda`]: the inverse of the same interpolation, so with this schedule
//! `t -> lambda_t -> timestep` gives exactly `t (N - 1)`.

use super::NoiseSchedule;

/// `N` betas with their cumulative products and half log-SNRs.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaSchedule {
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    lambdas: Vec<f64>,
}

impl BetaSchedule {
    /// From betas, one per training timestep; each must lie in `(0, 1)`, and there must be at least 2.
    pub fn from_betas(betas: Vec<f64>) -> crate::Result<Self> {
        anyhow::ensure!(betas.len() >= 2, "a beta schedule needs at least 2 timesteps, got {}", betas.len());
        if let Some((i, b)) = betas.iter().enumerate().find(|(_, b)| !(**b > 0.0 && **b < 1.0)) {
            anyhow::bail!("beta {i} is {b}, outside (0, 1)");
        }
        let mut acp = 1.0;
        let alphas_cumprod: Vec<f64> = betas
            .iter()
            .map(|b| {
                acp *= 1.0 - b;
                acp
            })
            .collect();
        let lambdas = alphas_cumprod.iter().map(|a| 0.5 * ((1.0 - a).ln() - a.ln())).collect();
        Ok(Self { betas, alphas_cumprod, lambdas })
    }

    /// guided-diffusion's `cosine` schedule (diffusers `squaredcos_cap_v2`): `alpha_bar(s) =
    /// cos((s + 0.008) / 1.008 * pi / 2)^2` and `beta_i = min(1 - alpha_bar((i+1)/N) / alpha_bar(i/N), 0.999)`.
    pub fn cosine(n: usize) -> crate::Result<Self> {
        let alpha_bar = |s: f64| ((s + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos().powi(2);
        let betas = (0..n).map(|i| (1.0 - alpha_bar((i + 1) as f64 / n as f64) / alpha_bar(i as f64 / n as f64)).min(0.999)).collect();
        Self::from_betas(betas)
    }

    /// Betas linear from `beta_start` to `beta_end` (numpy `linspace` in float64).
    pub fn linear(n: usize, beta_start: f64, beta_end: f64) -> crate::Result<Self> {
        Self::from_betas(linspace(beta_start, beta_end, n))
    }

    /// guided-diffusion's `linear` schedule: DDPM's 1e-4 .. 0.02 for 1000 steps, scaled by `1000 / N`.
    pub fn guided_diffusion_linear(n: usize) -> crate::Result<Self> {
        let scale = 1000.0 / n as f64;
        Self::linear(n, scale * 0.0001, scale * 0.02)
    }

    /// diffusers' `scaled_linear` (Stable Diffusion): linear in `sqrt(beta)`.
    pub fn scaled_linear(n: usize, beta_start: f64, beta_end: f64) -> crate::Result<Self> {
        Self::from_betas(linspace(beta_start.sqrt(), beta_end.sqrt(), n).into_iter().map(|b| b * b).collect())
    }

    /// Number of training timesteps `N`.
    pub fn num_timesteps(&self) -> usize {
        self.betas.len()
    }

    /// The betas.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// `alpha_bar_i`, the cumulative products of `1 - beta`.
    pub fn alphas_cumprod(&self) -> &[f64] {
        &self.alphas_cumprod
    }

    /// `lambda_i = log(sigma_i / alpha_i)` of each training timestep (increasing).
    pub fn lambdas(&self) -> &[f64] {
        &self.lambdas
    }

    /// `lambda` at a fractional timestep (clamped to `[0, N - 1]`), interpolated linearly.
    pub fn lambda_at(&self, timestep: f64) -> f64 {
        let l = &self.lambdas;
        let u = timestep.clamp(0.0, (l.len() - 1) as f64);
        let i = (u.floor() as usize).min(l.len() - 2);
        let f = u - i as f64;
        l[i] * (1.0 - f) + l[i + 1] * f
    }

    /// `(alpha, sigma)` at a fractional timestep: `alpha = sigmoid(-2 lambda)^(1/2)`, `sigma =
    /// sigmoid(2 lambda)^(1/2)`; at an integer timestep `i` this is `(sqrt(alpha_bar_i), sqrt(1 - alpha_bar_i))`.
    pub fn alpha_sigma_at(&self, timestep: f64) -> (f64, f64) {
        vp_of_lambda(self.lambda_at(timestep))
    }

    /// The fractional training timestep whose interpolated `lambda` equals `lambda`, clamped to `[0, N - 1]`
    /// (noise levels outside the teacher's training range map to its first or last step).
    pub fn timestep_of_lambda(&self, lambda: f64) -> f64 {
        let l = &self.lambdas;
        let last = l.len() - 1;
        if lambda.is_nan() {
            return f64::NAN;
        }
        if lambda <= l[0] {
            return 0.0;
        }
        if lambda >= l[last] {
            return last as f64;
        }
        let i = l.partition_point(|&x| x <= lambda) - 1;
        i as f64 + (lambda - l[i]) / (l[i + 1] - l[i])
    }
}

/// `(alpha, sigma)` of a variance-preserving process with half log-SNR `lambda = log(sigma / alpha)`.
pub fn vp_of_lambda(lambda: f64) -> (f64, f64) {
    ((1.0 / (1.0 + (2.0 * lambda).exp())).sqrt(), (1.0 / (1.0 + (-2.0 * lambda).exp())).sqrt())
}

fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n < 2 {
        return vec![start; n];
    }
    let step = (end - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
    v[n - 1] = end;
    v
}

impl NoiseSchedule for BetaSchedule {
    fn alpha(&self, t: f64) -> f64 {
        vp_of_lambda(self.lambda(t)).0
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_of_lambda(self.lambda(t)).1
    }
    fn lambda(&self, t: f64) -> f64 {
        self.lambda_at(t.clamp(0.0, 1.0) * (self.lambdas.len() - 1) as f64)
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        self.timestep_of_lambda(lambda) / (self.lambdas.len() - 1) as f64
    }
}
