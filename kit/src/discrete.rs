//! A network trained on an `N`-step beta schedule (guided-diffusion, diffusers, Stable Diffusion,
//! DeepFloyd IF) seen as a signal predictor. The framework's time reaches it through
//! `lambda_t = log(sigma_t / alpha_t)`: the fractional training timestep with that `lambda` on the
//! network's own [`BetaSchedule`] (interpolated, clamped to its range) is fed to the network, and its output
//! is converted to `x0` with the schedule's own `alpha`, `sigma` there. With the teacher's native schedule
//! these equal the run's `alpha_t`, `sigma_t`, and time `t` is timestep `t (N - 1)` exactly.

use std::sync::Arc;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::{anyhow, BetaSchedule, InputError, StudentContext};
use serde::Deserialize;

/// What the network's first `C` output channels predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    /// The noise `eps`: `x0 = (x_t - sigma eps) / alpha`.
    Eps,
    /// The signal `x0` itself.
    X0,
    /// The velocity `v = alpha eps - sigma x0`: `x0 = alpha x_t - sigma v`.
    V,
}

/// A beta schedule, a prediction target and the timestep input convention of a discrete-time network.
#[derive(Debug, Clone)]
pub struct DiscreteDenoiser {
    schedule: Arc<BetaSchedule>,
    prediction: Prediction,
    timestep_scale: f64,
}

impl DiscreteDenoiser {
    /// A network trained on `schedule` to predict `prediction`, fed `timestep_scale` times the schedule's
    /// timestep (guided-diffusion's `rescale_timesteps`: `1000 / N`; else 1).
    pub fn new(schedule: Arc<BetaSchedule>, prediction: Prediction, timestep_scale: f64) -> Self {
        Self { schedule, prediction, timestep_scale }
    }

    /// The training schedule.
    pub fn schedule(&self) -> &Arc<BetaSchedule> {
        &self.schedule
    }

    /// The timestep a teacher-initialised student runs the network at: `requested` (`[student]
    /// teacher_timestep`, checked against the schedule's range), else the timestep of the run schedule's
    /// `lambda(t_max)`, where the boundary condition holds at initialisation.
    pub fn student_timestep(&self, requested: Option<f64>, ctx: &StudentContext) -> boot_sdk::Result<f64> {
        let last = (self.schedule.num_timesteps() - 1) as f64;
        match requested {
            Some(s) if (0.0..=last).contains(&s) => Ok(s),
            Some(s) => Err(InputError::config("student.teacher_timestep", format!("must lie in [0, {last}], got {s}")).into()),
            None => Ok(self.schedule.timestep_of_lambda(ctx.schedule.lambda(ctx.t_max))),
        }
    }

    /// The prediction target.
    pub fn prediction(&self) -> Prediction {
        self.prediction
    }

    /// The fractional training timestep of each `lambda` (clamped to the schedule's range).
    pub fn timesteps_of_lambda(&self, lambda: &[f64]) -> Vec<f64> {
        lambda.iter().map(|&l| self.schedule.timestep_of_lambda(l)).collect()
    }

    /// The network's timestep input for schedule timesteps `timesteps`, as a `[N]` tensor.
    pub fn timestep_input(&self, timesteps: &[f64], dtype: DType, device: &Device) -> boot_sdk::Result<Tensor> {
        let v: Vec<f64> = timesteps.iter().map(|s| s * self.timestep_scale).collect();
        Ok(Tensor::from_vec(v, timesteps.len(), device)?.to_dtype(dtype)?)
    }

    /// The signal prediction from the network's output `out` for `x_t` (`[N, C, H, W]`) at schedule
    /// `timesteps`: its first `C` channels (learned-variance channels are split off), converted to `x0`.
    pub fn to_x0(&self, x_t: &Tensor, out: &Tensor, timesteps: &[f64]) -> boot_sdk::Result<Tensor> {
        let (n, c) = (x_t.dim(0)?, x_t.dim(1)?);
        if timesteps.len() != n {
            anyhow::bail!("{} timesteps for a batch of {n}", timesteps.len());
        }
        let out = out.narrow(1, 0, c)?;
        let (alpha, sigma): (Vec<f64>, Vec<f64>) = timesteps.iter().map(|&s| self.schedule.alpha_sigma_at(s)).unzip();
        let col = |v: Vec<f64>| boot_sdk::times::column(&v, x_t.dtype(), x_t.device());
        Ok(match self.prediction {
            Prediction::X0 => out,
            Prediction::Eps => {
                let inv_alpha = col(alpha.iter().map(|a| 1.0 / a).collect())?;
                let sigma_over_alpha = col(sigma.iter().zip(&alpha).map(|(s, a)| s / a).collect())?;
                (x_t.broadcast_mul(&inv_alpha)? - out.broadcast_mul(&sigma_over_alpha)?)?
            }
            Prediction::V => (x_t.broadcast_mul(&col(alpha)?)? - out.broadcast_mul(&col(sigma)?)?)?,
        })
    }
}
