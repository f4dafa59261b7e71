//! `[schedule] kind = "linear"` and `kind = "scaled-linear"`: discrete beta schedules (DDPM, Stable
//! Diffusion) made continuous through lambda. Both build [`boot_sdk::BetaSchedule`], the one implementation
//! that discrete-time teachers use for their own schedule too, so a teacher's native schedule and the same
//! betas named here give the same times (`core/tests/schedules.rs`).

use std::sync::Arc;

use boot_sdk::{BetaSchedule, NoiseSchedule, ScheduleConfig};
use serde::Deserialize;

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

boot_sdk::register! {
    schedule "linear" => "DDPM linear betas, continuous through lambda";
    impl ScheduleConfig for LinearScheduleConfig {
        fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
            Ok(Arc::new(BetaSchedule::linear(self.num_train_timesteps, self.beta_start, self.beta_end)?))
        }
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

boot_sdk::register! {
    schedule "scaled-linear" => "Stable Diffusion scaled-linear betas, continuous through lambda";
    impl ScheduleConfig for ScaledLinearScheduleConfig {
        fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
            Ok(Arc::new(BetaSchedule::scaled_linear(self.num_train_timesteps, self.beta_start, self.beta_end)?))
        }
    }
}
