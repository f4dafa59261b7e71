//! EDM's sigma schedule mapped to VP: `sigma_edm(t) = (smin^(1/rho) + t (smax^(1/rho) - smin^(1/rho)))^rho`,
//! `alpha_t = 1 / sqrt(1 + sigma_edm^2)`, `sigma_t = sigma_edm / sqrt(1 + sigma_edm^2)`, so `lambda_t = ln sigma_edm(t)`.

use std::sync::Arc;

use boot_sdk::{NoiseSchedule, ScheduleConfig};
use serde::Deserialize;

/// Karras et al.'s rho-spaced sigmas as a VP schedule; `t = 1` is `sigma_max`, `t = 0` is `sigma_min`.
#[derive(Debug, Clone, Copy)]
pub struct EdmSchedule {
    /// Smallest EDM sigma (at `t = 0`).
    pub sigma_min: f64,
    /// Largest EDM sigma (at `t = 1`).
    pub sigma_max: f64,
    /// Spacing exponent.
    pub rho: f64,
}

impl EdmSchedule {
    /// EDM's sigma `sigma_t / alpha_t` at `t`.
    pub fn edm_sigma(&self, t: f64) -> f64 {
        let (a, b) = (self.sigma_min.powf(1.0 / self.rho), self.sigma_max.powf(1.0 / self.rho));
        (a + t * (b - a)).powf(self.rho)
    }
}

impl NoiseSchedule for EdmSchedule {
    fn alpha(&self, t: f64) -> f64 {
        1.0 / (1.0 + self.edm_sigma(t).powi(2)).sqrt()
    }
    fn sigma(&self, t: f64) -> f64 {
        let s = self.edm_sigma(t);
        s / (1.0 + s * s).sqrt()
    }
    fn lambda(&self, t: f64) -> f64 {
        self.edm_sigma(t).ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        let (a, b) = (self.sigma_min.powf(1.0 / self.rho), self.sigma_max.powf(1.0 / self.rho));
        (lambda.exp().powf(1.0 / self.rho) - a) / (b - a)
    }
}

/// `[schedule] kind = "edm"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdmScheduleConfig {
    /// Smallest sigma (default 0.002).
    #[serde(default = "EdmScheduleConfig::default_min")]
    pub sigma_min: f64,
    /// Largest sigma (default 80).
    #[serde(default = "EdmScheduleConfig::default_max")]
    pub sigma_max: f64,
    /// Spacing exponent (default 7).
    #[serde(default = "EdmScheduleConfig::default_rho")]
    pub rho: f64,
}

impl EdmScheduleConfig {
    fn default_min() -> f64 {
        0.002
    }
    fn default_max() -> f64 {
        80.0
    }
    fn default_rho() -> f64 {
        7.0
    }
}

boot_sdk::register! {
    schedule "edm" => "EDM's rho-spaced sigmas mapped to VP";
    impl ScheduleConfig for EdmScheduleConfig {
        fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
            anyhow::ensure!(0.0 < self.sigma_min && self.sigma_min < self.sigma_max, "schedule: need 0 < sigma_min < sigma_max");
            anyhow::ensure!(self.rho > 0.0, "schedule: rho must be positive");
            Ok(Arc::new(EdmSchedule { sigma_min: self.sigma_min, sigma_max: self.sigma_max, rho: self.rho }))
        }
    }
}
