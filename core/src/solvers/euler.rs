//! The Euler target: one exact DDIM step written in signal space (Eq. 4).

use boot_sdk::candle::Tensor;
use boot_sdk::solver::{signal_step, signal_step_sizes};
use boot_sdk::{Denoise, Solver, SolverConfig, Times};
use serde::Deserialize;

/// `y_hat_s = y_t + (1 - e^(lambda_s - lambda_t)) (f~(x_t, t) - y_t)` with `x_t = alpha_t y_t + sigma_t eps`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Euler;

impl Solver for Euler {
    fn target(&self, y_t: &Tensor, eps: &Tensor, t: &Times, s: &Times, denoise: &mut Denoise) -> boot_sdk::Result<Tensor> {
        let f_t = denoise(&t.noisy(y_t, eps)?, t)?;
        signal_step(y_t, &f_t, &signal_step_sizes(t, s))
    }
}

/// `[solver] kind = "euler"` (no fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EulerConfig {}

boot_sdk::register! {
    solver "euler" => "one DDIM step in signal space (Eq. 4)";
    impl SolverConfig for EulerConfig {
        fn build(&self) -> boot_sdk::Result<Box<dyn Solver>> {
            Ok(Box::new(Euler))
        }
    }
}
