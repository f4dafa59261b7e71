//! Noise schedules: `alpha_t`, `sigma_t` over continuous time `t in [0, 1]`, variance preserving; and the
//! one implementation of a discrete beta schedule ([`BetaSchedule`]), used by core's `linear` and
//! `scaled-linear` schedules and by discrete-time teachers alike.

use std::fmt::Debug;
use std::sync::Arc;

mod beta;

pub use beta::{vp_of_lambda, BetaSchedule};

/// A variance-preserving noise schedule: `x_t = alpha_t x0 + sigma_t eps` with `alpha^2 + sigma^2 = 1`,
/// SNR decreasing in `t`.
pub trait NoiseSchedule: Send + Sync + Debug {
    /// Signal scale at `t`.
    fn alpha(&self, t: f64) -> f64;
    /// Noise scale at `t`; by default `sqrt(1 - alpha^2)`.
    fn sigma(&self, t: f64) -> f64 {
        (1.0 - self.alpha(t).powi(2)).max(0.0).sqrt()
    }
    /// Negative half log-SNR `lambda_t = -log(alpha_t / sigma_t)`, increasing in `t`.
    fn lambda(&self, t: f64) -> f64 {
        (self.sigma(t) / self.alpha(t)).ln()
    }
    /// Time at which the schedule has negative half log-SNR `lambda` (inverse of [`NoiseSchedule::lambda`]).
    /// The default bisects; schedules with a closed form override it.
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if self.lambda(mid) < lambda {
                lo = mid
            } else {
                hi = mid
            }
        }
        0.5 * (lo + hi)
    }
}

/// Config of a noise schedule, selected by `[schedule] kind = "..."`.
#[typetag::deserialize(tag = "kind")]
pub trait ScheduleConfig: Debug + Send + Sync {
    /// Builds the schedule.
    fn build(&self) -> crate::Result<Arc<dyn NoiseSchedule>>;
}
