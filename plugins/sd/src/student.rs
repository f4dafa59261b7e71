//! The BOOT student built from a Stable Diffusion teacher: `[student] kind = "sd-student"`.
//!
//! ```toml
//! [student]
//! kind = "sd-student"
//! # teacher_timestep = 989.01  # default: the teacher's timestep of the run schedule's lambda(t_max)
//! ```
//!
//! The plugin kit's teacher-initialised student (`kit/src/teacher_init.rs`) over the teacher's
//! UNet2DConditionModel, conditioned on the same text embeddings: its timestep input is fixed at the
//! teacher's timestep of `lambda(t_max)`, its input is the noise `eps`, and the zero-initialised embeddings of
//! the target time and `w` (`boot_time_embedding`, `boot_w_embedding`) are added to the time embedding.

use boot_kit::{teacher_of, Backbone, DiscreteDenoiser, TeacherInit, TeacherInitStudent};
use boot_models::diffusers::UNet2DConditionModel;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::{Cond, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use crate::teacher::{predict_x0, text_states, SdTeacher};

/// `[student] kind = "sd-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdStudentConfig {
    /// The teacher's (fractional) timestep fed to the network; default: the teacher's timestep of the run
    /// schedule's `lambda(t_max)`, where the boundary condition holds at initialisation.
    #[serde(default)]
    pub teacher_timestep: Option<f64>,
}

/// The Stable Diffusion student: the kit's teacher-initialised student over the teacher's UNet.
pub type SdStudent = TeacherInitStudent<SdBackbone>;

impl SdStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<SdStudent> {
        let teacher: &SdTeacher = teacher_of(ctx, "sd-student", "sd")?;
        let discrete = teacher.discrete().clone();
        let s_max = discrete.student_timestep(self.teacher_timestep, ctx)?;
        let config = teacher.unet().config().clone();
        let init = TeacherInit { kind: "sd-student", weights: teacher.weights(), is_buffer: |_| false, time_embedding: "boot_time_embedding", w_embedding: "boot_w_embedding" };
        TeacherInitStudent::build(ctx, &init, |vb| Ok(SdBackbone { unet: UNet2DConditionModel::new(vb, &config)?, discrete, s_max }))
    }
}

boot_sdk::register! {
    student "sd-student" => "the Stable Diffusion teacher's UNet2DConditionModel with zero-initialised target-time (and w) embeddings, initialised from the teacher";
    impl StudentConfig for SdStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(self.build_student(ctx)?))
        }
    }
}

/// The teacher's UNet at the fixed timestep `s_max`.
pub struct SdBackbone {
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    s_max: f64,
}

impl SdBackbone {
    /// The teacher timestep the network is run at.
    pub fn teacher_timestep(&self) -> f64 {
        self.s_max
    }
}

impl Backbone for SdBackbone {
    fn feature_dim(&self) -> usize {
        self.unet.config().block_out_channels[0]
    }

    fn embedding_dim(&self) -> usize {
        self.unet.config().time_embed_dim()
    }

    fn time_features(&self, times: &Times, dtype: DType, device: &Device) -> boot_sdk::Result<Tensor> {
        let target = self.discrete.timesteps_of_lambda(&times.lambda);
        let t = self.discrete.timestep_input(&target, dtype, device)?;
        Ok(self.unet.time_features(&t)?.to_dtype(dtype)?)
    }

    fn w_features(&self, w: &Tensor) -> boot_sdk::Result<Tensor> {
        Ok(self.unet.time_features(w)?.to_dtype(w.dtype())?)
    }

    fn predict(&self, eps: &Tensor, cond: &Cond, extra: &Tensor) -> boot_sdk::Result<Tensor> {
        let n = eps.dim(0)?;
        predict_x0(&self.unet, &self.discrete, eps, &vec![self.s_max; n], text_states(cond, n)?, Some(extra))
    }
}
