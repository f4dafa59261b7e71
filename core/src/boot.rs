//! Algorithm 1 of the paper, in one place: the BOOT loss for one batch.
//!
//! From noise `eps`, target time `t` and `s = max(t - delta, t_min)`:
//! `y_t = SG(y(eps, t))`, `y_s = y(eps, s)`, the solver's target `y_hat_s = SG(target(y_t))` built from the
//! guided teacher at `x_hat_t = alpha_t y_t + sigma_t eps`, and
//! `L = w_t ||y_s - y_hat_s||^2 + beta ||y(eps, t_max) - f~(eps, t_max)||^2` (the boundary term every `k` steps).

use boot_sdk::candle::{Tensor, D};
use boot_sdk::solver::signal_step_sizes;
use boot_sdk::{Cond, Guidance, NoiseSchedule, Solver, Student, Teacher, Times};
use serde::{Deserialize, Serialize};

/// Per-sample weight of the bootstrapping loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossWeighting {
    /// `w_t = 1`.
    #[default]
    Uniform,
    /// `w_t = 1 / (delta lambda'_t)^2` with `delta lambda'_t = 1 - e^(lambda_s - lambda_t)` (Algorithm 1 line 10).
    InverseStep,
}

/// The options of Algorithm 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootOptions {
    /// Step size `delta` between `t` and `s`.
    pub delta: f64,
    /// Smallest time the student is trained at (and samples at).
    pub t_min: f64,
    /// Largest time; the boundary condition holds here.
    pub t_max: f64,
    /// Weighting of the bootstrapping loss.
    pub weighting: LossWeighting,
    /// Compute the boundary loss every `boundary_every` steps (0: never).
    pub boundary_every: u64,
    /// Weight `beta` of the boundary loss.
    pub boundary_weight: f64,
}

/// The components one BOOT step runs over.
pub struct BootParts<'a> {
    /// The student being trained.
    pub student: &'a dyn Student,
    /// The frozen teacher.
    pub teacher: &'a dyn Teacher,
    /// Guidance around the teacher.
    pub guidance: &'a dyn Guidance,
    /// Target solver.
    pub solver: &'a dyn Solver,
    /// Noise schedule.
    pub schedule: &'a dyn NoiseSchedule,
}

/// The random inputs of one step, drawn per sample by the caller.
pub struct BootBatch {
    /// Initial noise `eps`, `[B, C, H, W]`.
    pub eps: Tensor,
    /// Uniform draws in `[0, 1)` that place `t` in `(t_min, t_max]`.
    pub u: Vec<f64>,
    /// Conditioning (`c` of Algorithm 1).
    pub cond: Cond,
    /// Guidance weights.
    pub w: Option<Vec<f64>>,
}

/// The loss of one step and its parts.
pub struct BootLoss {
    /// `L_BS + beta L_BC`, differentiable in the student's parameters.
    pub total: Tensor,
    /// Value of the bootstrapping loss.
    pub bootstrap: f32,
    /// Value of the boundary loss, on steps that compute it.
    pub boundary: Option<f32>,
    /// Mean target time of the batch.
    pub t_mean: f64,
}

/// Mean over pixels of `(a - b)^2`, one value per sample: `[B]`.
fn per_sample_mse(a: &Tensor, b: &Tensor) -> boot_sdk::Result<Tensor> {
    Ok((a - b)?.sqr()?.flatten_from(1)?.mean(D::Minus1)?)
}

/// Computes the BOOT loss of Algorithm 1 for `batch` at training step `step`.
pub fn boot_loss(opts: &BootOptions, parts: &BootParts, batch: &BootBatch, step: u64) -> boot_sdk::Result<BootLoss> {
    let BootParts { student, teacher, guidance, solver, schedule } = *parts;
    let (eps, cond, w) = (&batch.eps, &batch.cond, batch.w.as_deref());
    let n = eps.dim(0)?;
    // Line 4: t in (t_min, t_max], s = max(t - delta, t_min).
    let t: Vec<f64> = batch.u.iter().map(|u| opts.t_max - u * (opts.t_max - opts.t_min)).collect();
    let s: Vec<f64> = t.iter().map(|t| (t - opts.delta).max(opts.t_min)).collect();
    let (t_times, s_times) = (Times::new(schedule, t), Times::new(schedule, s));
    // Line 7: student predictions; y_t is stop-gradient.
    let y_t = student.forward(eps, &t_times, cond, w)?.detach();
    let y_s = student.forward(eps, &s_times, cond, w)?;
    // Lines 8-9 and the solver's target, stop-gradient.
    let mut denoise = |x: &Tensor, times: &Times| guidance.denoise(teacher, x, times, cond, w);
    let target = solver.target(&y_t, eps, &t_times, &s_times, &mut denoise)?.detach();
    // Line 10.
    let per_sample = per_sample_mse(&y_s, &target)?;
    let bootstrap = match opts.weighting {
        LossWeighting::Uniform => per_sample.mean_all()?,
        LossWeighting::InverseStep => {
            let weights: Vec<f64> = signal_step_sizes(&t_times, &s_times).iter().map(|h| 1.0 / (h * h).max(1e-12)).collect();
            let weights = boot_sdk::times::vector(&weights, per_sample.dtype(), eps.device())?;
            (per_sample * weights)?.mean_all()?
        }
    };
    let t_mean = t_times.t.iter().sum::<f64>() / n as f64;
    // Line 11, every `boundary_every` steps: the student at t_max matches the teacher on pure noise.
    let boundary = if opts.boundary_every > 0 && step % opts.boundary_every == 0 {
        let tmax = Times::constant(schedule, opts.t_max, n);
        let y_max = student.forward(eps, &tmax, cond, w)?;
        let f_max = guidance.denoise(teacher, eps, &tmax, cond, w)?.detach();
        Some(per_sample_mse(&y_max, &f_max)?.mean_all()?)
    } else {
        None
    };
    let bootstrap_value = bootstrap.to_dtype(boot_sdk::candle::DType::F32)?.to_scalar::<f32>()?;
    let (total, boundary_value) = match boundary {
        Some(bc) => {
            let v = bc.to_dtype(boot_sdk::candle::DType::F32)?.to_scalar::<f32>()?;
            ((bootstrap + (bc * opts.boundary_weight)?)?, Some(v))
        }
        None => (bootstrap, None),
    };
    Ok(BootLoss { total, bootstrap: bootstrap_value, boundary: boundary_value, t_mean })
}
