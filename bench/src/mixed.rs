//! Mixed precision around core's unchanged BOOT step: the networks compute in a half dtype while the loop
//! (noise, targets, loss, AdamW, EMA) stays `f32`.
//!
//! - [`CastStudent`]: the student's variables stay `f32` (the master weights AdamW and the EMA update); the
//!   noise is cast to `bf16` on the way in, so the network computes in `bf16` (the sdk layers cast their
//!   weights to the input's dtype, and backpropagation through that cast gives `f32` gradients; the
//!   embeddings stay `f32`, see `boot_models::embedding_dtype`), and the prediction is cast back to `f32`.
//!   This is what PyTorch's autocast does for convolutions and matrix products.
//! - [`CastTeacher`]: the teacher is built in `bf16` (`TeacherContext::dtype`: weights stored in `bf16`);
//!   inputs are cast to it and predictions back to `f32`.

use std::any::Any;
use std::sync::Arc;

use boot_sdk::candle::{DType, Tensor};
use boot_sdk::{Cond, CondSpec, NoiseSchedule, Student, Teacher, Times};

/// A student computing in `dtype` with `f32` inputs and outputs.
pub struct CastStudent {
    /// The wrapped student (built over `f32` variables).
    pub inner: Box<dyn Student>,
    /// Compute dtype.
    pub dtype: DType,
}

impl Student for CastStudent {
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let out = self.inner.forward(&eps.to_dtype(self.dtype)?, times, cond, w)?;
        Ok(out.to_dtype(eps.dtype())?)
    }
}

/// A teacher built in `dtype`, answering in its callers' dtype.
#[derive(Debug)]
pub struct CastTeacher {
    /// The wrapped teacher.
    pub inner: Arc<dyn Teacher>,
    /// Its dtype.
    pub dtype: DType,
}

impl Teacher for CastTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.inner.sample_shape()
    }
    fn cond_spec(&self) -> CondSpec {
        self.inner.cond_spec()
    }
    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let out = self.inner.denoise(&x_t.to_dtype(self.dtype)?, times, cond)?;
        Ok(out.to_dtype(x_t.dtype())?)
    }
    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        self.inner.sample_cond(seeds)
    }
    fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        self.inner.null_cond(cond)
    }
    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        self.inner.native_schedule()
    }
    fn as_any(&self) -> &dyn Any {
        self.inner.as_any()
    }
}
