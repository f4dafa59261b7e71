//! Mixed precision (`[run] dtype = "bf16"`): the networks compute in a half dtype while the loop (noise,
//! targets, loss, AdamW, EMA) stays `f32`.
//!
//! - [`CastStudent`]: the student's variables stay `f32` (the master weights AdamW and the EMA update); the
//!   noise is cast to the half dtype on the way in, so the network computes in it (the sdk layers cast their
//!   weights to the input's dtype, and backpropagation through that cast gives `f32` gradients; the
//!   embeddings stay `f32`, see `boot_models::embedding_dtype`), and the prediction is cast back to `f32`.
//!   This is what PyTorch's autocast does for convolutions and matrix products.
//! - [`CastTeacher`]: the teacher is built in the half dtype (`TeacherContext::dtype`: weights stored in
//!   it); inputs are cast to it and predictions back to the caller's dtype.
//!
//! [`crate::components::Components::build`] applies both when the run's [`Precision`] is not `f32`.

use std::any::Any;
use std::sync::Arc;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::{Cond, CondSpec, ExactDensity, InputError, NoiseSchedule, Student, Teacher, Times};
use serde::{Deserialize, Deserializer};

/// `run.dtype`: the networks' compute dtype.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in `f32`.
    #[default]
    F32,
    /// Teacher stored and run in `bf16`; student `bf16` compute over `f32` master weights; AdamW, EMA and
    /// the loss in `f32`. Needs a CUDA device (candle's CPU backend has no `bf16` matrix product).
    Bf16,
    /// The `bf16` path's plumbing in `f16`, for CPU checks of it (the benchmark's `--dtype f16`); not a
    /// config value.
    F16,
}

impl<'de> Deserialize<'de> for Precision {
    /// `"f32"` or `"bf16"`; anything else is an error naming both.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(serde::de::Error::custom(format!("`{other}`: expected \"f32\" or \"bf16\""))),
        }
    }
}

impl Precision {
    /// The networks' compute dtype, `None` for `f32` (nothing is wrapped).
    pub fn half(self) -> Option<DType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(DType::BF16),
            Precision::F16 => Some(DType::F16),
        }
    }

    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Refuses `bf16` on a CPU device: an input error naming `run.dtype` and the fix.
    pub fn check_device(self, device: &Device) -> boot_sdk::Result<()> {
        if self == Precision::Bf16 && device.is_cpu() {
            let msg = "`bf16` needs a GPU (the CPU backend has no bf16 matrix product): set run.device = \"cuda:0\" on a CUDA build, or run.dtype = \"f32\"";
            return Err(InputError::config("run.dtype", msg).into());
        }
        Ok(())
    }
}

/// A student computing in `dtype` with inputs and outputs in the caller's dtype (`f32`).
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

/// A teacher built in `dtype`, answering in its callers' dtype. Forwards every [`Teacher`] method: a new
/// method of the trait belongs in this list (`denoise` and `decode` cast).
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
    fn decode(&self, x0: &Tensor) -> boot_sdk::Result<Tensor> {
        let pixels = self.inner.decode(&x0.to_dtype(self.dtype)?)?;
        Ok(pixels.to_dtype(x0.dtype())?)
    }
    fn exact_density(&self) -> Option<&dyn ExactDensity> {
        self.inner.exact_density()
    }
    fn as_any(&self) -> &dyn Any {
        self.inner.as_any()
    }
}
