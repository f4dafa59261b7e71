//! The student: a one-step generator `y(eps, t, cond, w)` predicting the signal of the teacher's ODE.

use std::fmt::Debug;
use std::path::PathBuf;

use crate::candle::{Device, Tensor};
use crate::candle_nn::{VarBuilder, VarMap};
use crate::{Cond, NoiseSchedule, Teacher, Times};

/// The student `y(eps, t, cond, w) -> y_t`: the signal part of the teacher's ODE state at target time `t`,
/// from the initial noise `eps`. The generator output is `x_t = alpha_t y + sigma_t eps`; the sample is
/// `y(eps, t_min)`.
pub trait Student: Send + Sync {
    /// Signal prediction for noise `eps` (`[B, C, H, W]`) at target `times`, with guidance weights `w`
    /// (one per sample) for students conditioned on `w`.
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> crate::Result<Tensor>;
}

/// What a student config gets to build its student.
pub struct StudentContext<'a> {
    /// Builder over the run's variable map: every trainable parameter must come from it.
    pub vb: VarBuilder<'a>,
    /// The variable map behind `vb`, so a student initialised from the teacher can set values after building.
    pub varmap: &'a VarMap,
    /// The teacher being distilled.
    pub teacher: &'a dyn Teacher,
    /// The run's noise schedule (the teacher's own unless the config names another).
    pub schedule: &'a dyn NoiseSchedule,
    /// Whether the student takes a guidance weight `w`.
    pub w_conditioned: bool,
    /// `t_min` of the run: the student's sample is `y(eps, t_min)`.
    pub t_min: f64,
    /// `t_max` of the run: the teacher-time input of teacher-initialised students is fixed there, at the
    /// run schedule's `lambda(t_max)`.
    pub t_max: f64,
    /// Device of the run.
    pub device: Device,
    /// Directory relative paths in the config are resolved against.
    pub base_dir: PathBuf,
}

/// Config of a student, selected by `[student] kind = "..."`.
#[typetag::deserialize(tag = "kind")]
pub trait StudentConfig: Debug + Send + Sync {
    /// Builds the student; all its parameters must be created through `ctx.vb`.
    fn build(&self, ctx: &StudentContext) -> crate::Result<Box<dyn Student>>;
}
