//! The teacher: a frozen diffusion model seen through the signal-prediction contract.

use std::any::Any;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use crate::candle::{DType, Device, Tensor};
use crate::{Cond, CondSpec, NoiseSchedule, Times};

/// A frozen diffusion model `f(x_t, t, cond) -> x0_hat` (signal prediction). Plugins convert eps-, v- and
/// EDM-style outputs to this contract.
pub trait Teacher: Send + Sync + Debug {
    /// Shape `[C, H, W]` of one sample.
    fn sample_shape(&self) -> [usize; 3];

    /// The conditioning the teacher takes.
    fn cond_spec(&self) -> CondSpec {
        CondSpec::default()
    }

    /// Signal prediction `x0_hat` for noisy images `x_t` (`[B, C, H, W]`) at `times`.
    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> crate::Result<Tensor>;

    /// Draws the conditioning for the samples with the given per-sample seeds (the "context dataset" of
    /// Algorithm 1: class labels, prompts). Unconditional teachers return [`Cond::none`].
    fn sample_cond(&self, _seeds: &[u64]) -> crate::Result<Cond> {
        Ok(Cond::none())
    }

    /// The negative condition `n` for classifier-free guidance, for a batch conditioned on `cond`.
    fn null_cond(&self, cond: &Cond) -> crate::Result<Cond> {
        Ok(cond.with_null_class())
    }

    /// The conditioning of one sample per prompt, for text-conditional teachers (`boot-host sample --prompt`);
    /// other teachers refuse.
    fn prompt_cond(&self, _prompts: &[String]) -> crate::Result<Cond> {
        Err(crate::InputError::new("command line", "--prompt", "this teacher takes no text prompts").into())
    }

    /// The schedule the teacher was trained with, where it has one (discrete-time teachers). The run uses it
    /// unless the config names another schedule.
    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        None
    }

    /// Pixels `[B, C', H', W']` in `[-1, 1]` for samples `x0` (`[B, C, H, W]`, the teacher's data space):
    /// the identity for pixel-space teachers; a latent teacher decodes with its autoencoder. Grids and
    /// `boot-host sample` show what this returns.
    fn decode(&self, x0: &Tensor) -> crate::Result<Tensor> {
        Ok(x0.clone())
    }

    /// Exact density of the teacher's data distribution, where it is known (the analytic teacher).
    fn exact_density(&self) -> Option<&dyn ExactDensity> {
        None
    }

    /// For downcasting by a student config of the same plugin (a teacher-initialised student reads the
    /// teacher's weights).
    fn as_any(&self) -> &dyn Any;
}

/// A data distribution with a known density and known modes, for exact metrics.
pub trait ExactDensity {
    /// Negative log-likelihood per dimension (nats) of each sample `[B, C, H, W]`, conditioned on `cond`
    /// where the distribution is conditional.
    fn nll_per_dim(&self, x0: &Tensor, cond: &Cond) -> crate::Result<Vec<f64>>;
    /// The mode (mixture component) each sample lies in: the most likely one when the sample is inside its
    /// typical region, `None` when it is in no mode's region (a blurry average of modes, say).
    fn mode_of(&self, x0: &Tensor) -> crate::Result<Vec<Option<usize>>>;
    /// Indices of the modes a sampler can reach given `cond` (all modes when unconditional).
    fn reachable_modes(&self, cond: &Cond) -> crate::Result<Vec<usize>>;
    /// The weights of the modes (as numbered by [`ExactDensity::mode_of`]) that each of `batch` samples
    /// conditioned on `cond` is drawn with: one row per sample, summing to 1 (the mixture's own weights when
    /// unconditional, a class's renormalised weights for a labelled sample).
    fn mode_weights(&self, cond: &Cond, batch: usize) -> crate::Result<Vec<Vec<f64>>>;
    /// Exact mean `[D]` and covariance `[D * D]` (row-major) of the flattened samples `[C * H * W]` of the
    /// distribution whose modes have the given weights (one per mode, summing to 1).
    fn moments(&self, weights: &[f64]) -> crate::Result<(Vec<f64>, Vec<f64>)>;
}

/// What a teacher config gets to build its teacher.
#[derive(Debug, Clone)]
pub struct TeacherContext {
    /// Device the run uses.
    pub device: Device,
    /// Compute dtype for the teacher.
    pub dtype: DType,
    /// Directory relative paths in the config are resolved against.
    pub base_dir: PathBuf,
}

/// Config of a teacher, selected by `[teacher] kind = "..."`.
#[typetag::deserialize(tag = "kind")]
pub trait TeacherConfig: Debug + Send + Sync {
    /// Builds the teacher. Errors in the config are [`crate::InputError::config`] naming the key
    /// (`teacher.checkpoint`); the host names the run's file.
    fn build(&self, ctx: &TeacherContext) -> crate::Result<Arc<dyn Teacher>>;
}
