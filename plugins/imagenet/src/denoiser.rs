//! An ADM network seen as a signal predictor at the teacher's own (fractional) timesteps: label handling
//! (including the null class), the timestep input, and the eps -> x0 conversion with the network's own
//! `alpha` / `sigma`. Shared by the teacher and the student.

use std::sync::Arc;

use boot_sdk::candle::{DType, Tensor};
use boot_models::adm::UNetModel;
use boot_sdk::nn::beta_schedule::BetaSchedule;
use boot_sdk::{Cond, InputError};

use crate::config::{NullClass, Prediction};

/// A guided-diffusion `UNetModel` with the schedule and conventions it was trained with.
#[derive(Debug, Clone)]
pub struct AdmDenoiser {
    unet: UNetModel,
    schedule: Arc<BetaSchedule>,
    prediction: Prediction,
    null_class: NullClass,
    /// Real classes (without a null row); `None` for an unconditional net.
    num_classes: Option<usize>,
    /// Factor from the schedule's timestep to the network's input (`1000 / N` with `rescale_timesteps`).
    timestep_scale: f64,
}

impl AdmDenoiser {
    /// Wraps `unet`, trained with `schedule` to predict `prediction`.
    pub fn new(unet: UNetModel, schedule: Arc<BetaSchedule>, prediction: Prediction, null_class: NullClass, num_classes: Option<usize>, rescale_timesteps: bool) -> Self {
        let timestep_scale = if rescale_timesteps { 1000.0 / schedule.num_timesteps() as f64 } else { 1.0 };
        Self { unet, schedule, prediction, null_class, num_classes, timestep_scale }
    }

    /// The network.
    pub fn unet(&self) -> &UNetModel {
        &self.unet
    }

    /// The training schedule.
    pub fn schedule(&self) -> &Arc<BetaSchedule> {
        &self.schedule
    }

    /// Real classes of a class-conditional net.
    pub fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }

    /// Shape `[C, H, W]` of one sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        let c = self.unet.config();
        [c.in_channels, c.image_size, c.image_size]
    }

    /// The fractional training timestep of each `lambda` (clamped to the schedule's range).
    pub fn timesteps_of_lambda(&self, lambda: &[f64]) -> Vec<f64> {
        lambda.iter().map(|&l| self.schedule.timestep_of_lambda(l)).collect()
    }

    /// The network's timestep input for schedule timesteps `timesteps`, as a `[N]` tensor.
    pub fn timestep_input(&self, timesteps: &[f64], dtype: DType, device: &boot_sdk::candle::Device) -> boot_sdk::Result<Tensor> {
        let v: Vec<f64> = timesteps.iter().map(|s| s * self.timestep_scale).collect();
        Ok(Tensor::from_vec(v, timesteps.len(), device)?.to_dtype(dtype)?)
    }

    /// The label ids the network's table is indexed with, for a batch of `n` conditioned on `cond`:
    /// `None` for an unconditional net. A class-conditional net reads `cond.class` (absent = all null);
    /// a null label becomes the extra row, the zero embedding or an error, as `null_class` says.
    pub fn label_ids(&self, cond: &Cond, n: usize) -> boot_sdk::Result<Option<Vec<Option<u32>>>> {
        let Some(k) = self.num_classes else { return Ok(None) };
        let given = cond.class.clone().unwrap_or_else(|| vec![None; n]);
        if given.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("adm: {} class labels for a batch of {n}", given.len()));
        }
        given
            .into_iter()
            .map(|l| match (l, self.null_class) {
                (Some(c), _) if c as usize >= k => Err(InputError::new("", "class label", format!("label {c} out of range (the model has {k} classes)")).into()),
                (Some(c), _) => Ok(Some(c)),
                (None, NullClass::ExtraRow) => Ok(Some(k as u32)),
                (None, NullClass::Zero) => Ok(None),
                (None, NullClass::None) => Err(no_null_class()),
            })
            .collect::<boot_sdk::Result<Vec<_>>>()
            .map(Some)
    }

    /// Whether the network can be asked for the null condition.
    pub fn has_null_class(&self) -> bool {
        self.num_classes.is_none() || self.null_class != NullClass::None
    }

    /// Signal prediction `x0_hat` for `x_t` (`[N, C, H, W]`, the variance-preserving noisy image) at schedule
    /// timesteps `timesteps` with labels `labels` (from [`AdmDenoiser::label_ids`]) and an `extra` vector
    /// added to the embedding. eps-prediction is converted with the schedule's `alpha`, `sigma` at those
    /// timesteps: `x0 = (x_t - sigma eps) / alpha`; learned-variance channels are dropped.
    pub fn predict_x0(&self, x_t: &Tensor, timesteps: &[f64], labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
        let (n, c) = (x_t.dim(0)?, x_t.dim(1)?);
        if timesteps.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("adm: {} timesteps for a batch of {n}", timesteps.len()));
        }
        // Timesteps stay in f32 for a half-precision input (see `boot_models::embedding_dtype`).
        let t = self.timestep_input(timesteps, boot_models::embedding_dtype(x_t.dtype()), x_t.device())?;
        let out = self.unet.forward(x_t, &t, labels, extra)?.narrow(1, 0, c)?;
        Ok(match self.prediction {
            Prediction::X0 => out,
            Prediction::Eps => {
                let (alpha, sigma): (Vec<f64>, Vec<f64>) = timesteps.iter().map(|&s| self.schedule.alpha_sigma_at(s)).unzip();
                let col = |v: Vec<f64>| -> boot_sdk::candle::Result<Tensor> { Tensor::from_vec(v, (n, 1, 1, 1), x_t.device())?.to_dtype(x_t.dtype()) };
                let inv_alpha = col(alpha.iter().map(|a| 1.0 / a).collect())?;
                let sigma_over_alpha = col(sigma.iter().zip(&alpha).map(|(s, a)| s / a).collect())?;
                (x_t.broadcast_mul(&inv_alpha)? - out.broadcast_mul(&sigma_over_alpha)?)?
            }
        })
    }
}

/// The error for a null condition asked of a net without a null class.
pub fn no_null_class() -> boot_sdk::anyhow::Error {
    InputError::config(
        "teacher.null_class",
        "the model has no null class, but the run asks for the unconditional prediction (classifier-free guidance): \
         set null_class = \"extra-row\" for a model trained with label dropout, or \"zero\" to use a zero label embedding",
    )
    .into()
}
