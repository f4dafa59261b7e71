//! Discrete beta schedules (DDPM `linear`, Stable Diffusion `scaled-linear`) made continuous through lambda.
//!
//! The `N` training timesteps `i = 0..N-1` have `lambda_i = log(sigma_i / alpha_i)` from the cumulative
//! product of `1 - beta`. Continuous time places timestep `i` at `t = i / (N - 1)` and interpolates `lambda`
//! linearly in between; `alpha` and `sigma` follow from `lambda`, so `alpha^2 + sigma^2 = 1` holds exactly.
//! A discrete-time teacher maps a continuous time back to its (fractional) timestep with
//! [`DiscreteSchedule::timestep_of_lambda`].

use std::sync::Arc;

use boot_sdk::{NoiseSchedule, ScheduleConfig};
use serde::Deserialize;

/// A schedule defined by `N` discrete betas, interpolated in lambda.
#[derive(Debug, Clone)]
pub struct DiscreteSchedule {
    lambdas: Vec<f64>,
}

impl DiscreteSchedule {
    /// From betas (one per training timestep).
    pub fn from_betas(betas: &[f64]) -> boot_sdk::Result<Self> {
        anyhow::ensure!(betas.len() >= 2, "a discrete schedule needs at least 2 timesteps, got {}", betas.len());
        anyhow::ensure!(betas.iter().all(|b| *b > 0.0 && *b < 1.0), "betas must lie in (0, 1)");
        let mut acp = 1.0;
        let lambdas = betas
            .iter()
            .map(|b| {
                acp *= 1.0 - b;
                0.5 * ((1.0 - acp) / acp).ln()
            })
            .collect();
        Ok(Self { lambdas })
    }

    /// DDPM's linear betas from `beta_start` to `beta_end`.
    pub fn linear(n: usize, beta_start: f64, beta_end: f64) -> boot_sdk::Result<Self> {
        let betas: Vec<f64> = (0..n).map(|i| beta_start + (beta_end - beta_start) * i as f64 / (n - 1) as f64).collect();
        Self::from_betas(&betas)
    }

    /// Stable Diffusion's scaled-linear betas: linear in `sqrt(beta)`.
    pub fn scaled_linear(n: usize, beta_start: f64, beta_end: f64) -> boot_sdk::Result<Self> {
        let (a, b) = (beta_start.sqrt(), beta_end.sqrt());
        let betas: Vec<f64> = (0..n).map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).powi(2)).collect();
        Self::from_betas(&betas)
    }

    /// Number of training timesteps.
    pub fn num_timesteps(&self) -> usize {
        self.lambdas.len()
    }

    /// `lambda` of each training timestep.
    pub fn lambdas(&self) -> &[f64] {
        &self.lambdas
    }

    /// The fractional training timestep whose interpolated lambda equals `lambda` (clamped to the range).
    pub fn timestep_of_lambda(&self, lambda: f64) -> f64 {
        let l = &self.lambdas;
        if lambda <= l[0] {
            return 0.0;
        }
        if lambda >= l[l.len() - 1] {
            return (l.len() - 1) as f64;
        }
        let i = l.partition_point(|&x| x <= lambda) - 1;
        i as f64 + (lambda - l[i]) / (l[i + 1] - l[i])
    }
}

impl NoiseSchedule for DiscreteSchedule {
    fn alpha(&self, t: f64) -> f64 {
        // alpha = sigmoid(-2 lambda)^(1/2)
        (1.0 / (1.0 + (2.0 * self.lambda(t)).exp())).sqrt()
    }
    fn sigma(&self, t: f64) -> f64 {
        (1.0 / (1.0 + (-2.0 * self.lambda(t)).exp())).sqrt()
    }
    fn lambda(&self, t: f64) -> f64 {
        let n = self.lambdas.len();
        let u = t.clamp(0.0, 1.0) * (n - 1) as f64;
        let i = (u.floor() as usize).min(n - 2);
        let f = u - i as f64;
        self.lambdas[i] * (1.0 - f) + self.lambdas[i + 1] * f
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        self.timestep_of_lambda(lambda) / (self.lambdas.len() - 1) as f64
    }
}

fn default_timesteps() -> usize {
    1000
}

/// `[schedule] kind = "linear"`: DDPM betas, linear from `beta_start` to `beta_end`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearScheduleConfig {
    /// Number of training timesteps.
    #[serde(default = "default_timesteps")]
    pub num_train_timesteps: usize,
    /// First beta.
    #[serde(default = "LinearScheduleConfig::default_start")]
    pub beta_start: f64,
    /// Last beta.
    #[serde(default = "LinearScheduleConfig::default_end")]
    pub beta_end: f64,
}

impl LinearScheduleConfig {
    fn default_start() -> f64 {
        1e-4
    }
    fn default_end() -> f64 {
        0.02
    }
}

#[typetag::deserialize(name = "linear")]
impl ScheduleConfig for LinearScheduleConfig {
    fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
        Ok(Arc::new(DiscreteSchedule::linear(self.num_train_timesteps, self.beta_start, self.beta_end)?))
    }
}

/// `[schedule] kind = "scaled-linear"`: Stable Diffusion's betas, linear in `sqrt(beta)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaledLinearScheduleConfig {
    /// Number of training timesteps.
    #[serde(default = "default_timesteps")]
    pub num_train_timesteps: usize,
    /// First beta.
    #[serde(default = "ScaledLinearScheduleConfig::default_start")]
    pub beta_start: f64,
    /// Last beta.
    #[serde(default = "ScaledLinearScheduleConfig::default_end")]
    pub beta_end: f64,
}

impl ScaledLinearScheduleConfig {
    fn default_start() -> f64 {
        0.00085
    }
    fn default_end() -> f64 {
        0.012
    }
}

#[typetag::deserialize(name = "scaled-linear")]
impl ScheduleConfig for ScaledLinearScheduleConfig {
    fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
        Ok(Arc::new(DiscreteSchedule::scaled_linear(self.num_train_timesteps, self.beta_start, self.beta_end)?))
    }
}
