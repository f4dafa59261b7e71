//! The cosine VP schedule `alpha_t = cos(pi t / 2)`, `sigma_t = sin(pi t / 2)`.

use std::sync::Arc;

use boot_sdk::{NoiseSchedule, ScheduleConfig};
use serde::Deserialize;

/// `alpha_t = cos(pi t / 2)`, `sigma_t = sin(pi t / 2)`, so `lambda_t = log tan(pi t / 2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CosineSchedule;

impl NoiseSchedule for CosineSchedule {
    fn alpha(&self, t: f64) -> f64 {
        (std::f64::consts::FRAC_PI_2 * t).cos()
    }
    fn sigma(&self, t: f64) -> f64 {
        (std::f64::consts::FRAC_PI_2 * t).sin()
    }
    fn lambda(&self, t: f64) -> f64 {
        (std::f64::consts::FRAC_PI_2 * t).tan().ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        lambda.exp().atan() / std::f64::consts::FRAC_PI_2
    }
}

/// `[schedule] kind = "cosine"` (no fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineScheduleConfig {}

boot_sdk::register! {
    schedule "cosine" => "alpha = cos(pi t / 2), sigma = sin(pi t / 2)";
    impl ScheduleConfig for CosineScheduleConfig {
        fn build(&self) -> boot_sdk::Result<Arc<dyn NoiseSchedule>> {
            Ok(Arc::new(CosineSchedule))
        }
    }
}
