//! Heun's target (Eq. 15): an Euler predictor, then the average of the slopes at `t` and at the prediction.

use boot_sdk::candle::Tensor;
use boot_sdk::solver::{signal_step, signal_step_sizes};
use boot_sdk::{Denoise, Solver, SolverConfig, Times};
use serde::Deserialize;

/// `y~_s = y_t + h (f~(x_t, t) - y_t)`, `x~_s = alpha_s y~_s + sigma_s eps`,
/// `y_hat_s = y_t + h/2 [(f~(x_t, t) - y_t) + (f~(x~_s, s) - y~_s)]` with `h = 1 - e^(lambda_s - lambda_t)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heun;

impl Solver for Heun {
    fn target(&self, y_t: &Tensor, eps: &Tensor, t: &Times, s: &Times, denoise: &mut Denoise) -> boot_sdk::Result<Tensor> {
        let h = signal_step_sizes(t, s);
        let f_t = denoise(&t.noisy(y_t, eps)?, t)?;
        let y_pred = signal_step(y_t, &f_t, &h)?;
        let f_s = denoise(&s.noisy(&y_pred, eps)?, s)?;
        let slope = ((f_t - y_t)? + (f_s - &y_pred)?)?;
        let half: Vec<f64> = h.iter().map(|h| 0.5 * h).collect();
        let half = boot_sdk::times::column(&half, y_t.dtype(), y_t.device())?;
        Ok((y_t + slope.broadcast_mul(&half)?)?)
    }
}

/// `[solver] kind = "heun"` (no fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeunConfig {}

boot_sdk::register! {
    solver "heun" => "Heun's method on the signal ODE (Eq. 15)";
    impl SolverConfig for HeunConfig {
        fn build(&self) -> boot_sdk::Result<Box<dyn Solver>> {
            Ok(Box::new(Heun))
        }
    }
}
