//! Solvers compute the bootstrapping target `y_hat_s` from the student's `y_t` (Algorithm 1, Eq. 13-15).

use std::fmt::Debug;

use crate::candle::Tensor;
use crate::Times;

/// The (guided) teacher as the solver sees it: `f~(x, times) -> x0_hat`.
pub type Denoise<'a> = dyn FnMut(&Tensor, &Times) -> crate::Result<Tensor> + 'a;

/// A one-step solver of the signal ODE `dy/dt = -lambda'_t (f(x_t, t) - y_t)`, `x_t = alpha_t y + sigma_t eps`.
/// Solvers are pure functions of their inputs: the same signature for every solver, like k-diffusion's.
pub trait Solver: Send + Sync + Debug {
    /// The target `y_hat_s` at the earlier time `s` from `y_t` at `t`, both per sample.
    fn target(&self, y_t: &Tensor, eps: &Tensor, t: &Times, s: &Times, denoise: &mut Denoise) -> crate::Result<Tensor>;
}

/// `1 - exp(lambda_s - lambda_t)` per sample: the exact DDIM step size in signal space, which is
/// `delta * lambda'_t` of Algorithm 1 line 6.
pub fn signal_step_sizes(t: &Times, s: &Times) -> Vec<f64> {
    t.lambda.iter().zip(&s.lambda).map(|(lt, ls)| -(ls - lt).exp_m1()).collect()
}

/// `y + h * (f - y)` with `h` one value per sample: Eq. (4), one DDIM step written in signal space.
pub fn signal_step(y: &Tensor, f: &Tensor, h: &[f64]) -> crate::Result<Tensor> {
    let h = crate::times::column(h, y.dtype(), y.device())?;
    Ok((y + (f - y)?.broadcast_mul(&h)?)?)
}

/// Config of a solver, selected by `[solver] kind = "..."`.
#[typetag::deserialize(tag = "kind")]
pub trait SolverConfig: Debug + Send + Sync {
    /// Builds the solver.
    fn build(&self) -> crate::Result<Box<dyn Solver>>;
}
