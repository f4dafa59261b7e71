//! An ADM network seen as a signal predictor at the teacher's own (fractional) timesteps: guided-diffusion's
//! label handling (including the null class) around the plugin kit's discrete-time denoiser
//! (`kit/src/discrete.rs`: timestep of `lambda`, eps / x0 / v conversion, learned variance split off).
//! Shared by the teacher and the student.

use std::sync::Arc;

use boot_kit::{DiscreteDenoiser, Prediction};
use boot_sdk::candle::{DType, Tensor};
use boot_models::adm::UNetModel;
use boot_sdk::{BetaSchedule, Cond, InputError};

use crate::config::NullClass;

/// A guided-diffusion `UNetModel` with the schedule and conventions it was trained with.
#[derive(Debug, Clone)]
pub struct AdmDenoiser {
    unet: UNetModel,
    discrete: DiscreteDenoiser,
    null_class: NullClass,
    /// Real classes (without a null row); `None` for an unconditional net.
    num_classes: Option<usize>,
}

impl AdmDenoiser {
    /// Wraps `unet`, trained with `schedule` to predict `prediction`; with `rescale_timesteps` the network
    /// sees timesteps scaled to `1000 / N`.
    pub fn new(unet: UNetModel, schedule: Arc<BetaSchedule>, prediction: Prediction, null_class: NullClass, num_classes: Option<usize>, rescale_timesteps: bool) -> Self {
        let scale = if rescale_timesteps { 1000.0 / schedule.num_timesteps() as f64 } else { 1.0 };
        Self { unet, discrete: DiscreteDenoiser::new(schedule, prediction, scale), null_class, num_classes }
    }

    /// The network.
    pub fn unet(&self) -> &UNetModel {
        &self.unet
    }

    /// The schedule, prediction target and timestep convention.
    pub fn discrete(&self) -> &DiscreteDenoiser {
        &self.discrete
    }

    /// The training schedule.
    pub fn schedule(&self) -> &Arc<BetaSchedule> {
        self.discrete.schedule()
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
                (Some(c), _) if c as usize >= k => Err(InputError::config("class label", format!("label {c} out of range (the model has {k} classes)")).into()),
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
    /// added to the embedding.
    pub fn predict_x0(&self, x_t: &Tensor, timesteps: &[f64], labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
        let n = x_t.dim(0)?;
        if timesteps.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("adm: {} timesteps for a batch of {n}", timesteps.len()));
        }
        // Timesteps stay in f32 for a half-precision input (see `boot_models::embedding_dtype`).
        let t = self.discrete.timestep_input(timesteps, boot_models::embedding_dtype(x_t.dtype()), x_t.device())?;
        let out = self.unet.forward(x_t, &t, labels, extra)?;
        self.discrete.to_x0(x_t, &out, timesteps)
    }

    /// The network's timestep input (see [`DiscreteDenoiser::timestep_input`]).
    pub fn timestep_input(&self, timesteps: &[f64], dtype: DType, device: &boot_sdk::candle::Device) -> boot_sdk::Result<Tensor> {
        self.discrete.timestep_input(timesteps, dtype, device)
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
