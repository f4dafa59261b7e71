//! Guidance: how the teacher's outputs are combined into the denoiser `f~` that targets use.

use std::fmt::Debug;

use crate::candle::Tensor;
use crate::{Cond, Teacher, Times};

/// Produces the guided denoiser `f~(x, t, c)` from a teacher, and the guidance weights of a batch.
pub trait Guidance: Send + Sync + Debug {
    /// Guidance weights for the samples with the given per-sample seeds (one draw per seed); `None` for
    /// unguided runs.
    fn sample_w(&self, seeds: &[u64]) -> Option<Vec<f64>>;
    /// Whether the student is conditioned on `w` (per-sample random weights).
    fn w_conditioned(&self) -> bool;
    /// `f~(x, t, c)` for the batch, with the weights from [`Guidance::sample_w`], thresholded.
    fn denoise(&self, teacher: &dyn Teacher, x: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> crate::Result<Tensor>;
}

/// Config of a guidance, selected by `[guidance] kind = "..."`.
#[typetag::deserialize(tag = "kind")]
pub trait GuidanceConfig: Debug + Send + Sync {
    /// Builds the guidance.
    fn build(&self) -> crate::Result<Box<dyn Guidance>>;
}
