//! The BOOT student built from an ADM teacher: `[student] kind = "adm-student"`.
//!
//! ```toml
//! [student]
//! kind = "adm-student"
//! # teacher_timestep = 989.01  # default: the teacher's timestep of the run schedule's lambda(t_max)
//! ```
//!
//! The plugin kit's teacher-initialised student (`kit/src/teacher_init.rs`) over the teacher's network:
//! its timestep input is fixed at the teacher's timestep of the run schedule's `lambda(t_max)`, its input is
//! the noise `eps` itself (the variance-preserving `x_{t_max}` the boundary condition compares at), and the
//! new zero-initialised embeddings are added where guided-diffusion adds the class embedding (to `emb`,
//! after `time_embed`):
//!
//! `y(eps, t, c, w) = x0_hat(eps; s_max, c, extra = E_t(t) + E_w(w))`,
//!
//! - `E_t(t) = boot_time_embed(timestep_embedding(s(t)))`: the target time as the teacher's own
//!   fractional timestep `s(t)` of `lambda_t`, embedded with the network's sinusoid, then a linear layer
//!   (`model_channels -> 4 model_channels`) initialised to zero;
//! - `E_w(w) = boot_w_embed(timestep_embedding(w))`: the same for `w`;
//! - `x0_hat` converts the network's output with the teacher's `alpha`, `sigma` at `s_max`.

use boot_kit::{teacher_of, Backbone, TeacherInit, TeacherInitStudent};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::adm::UNetModel;
use boot_models::embeddings::timesteps::Timesteps;
use boot_sdk::{Cond, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use crate::denoiser::AdmDenoiser;
use crate::teacher::AdmTeacher;

/// `[student] kind = "adm-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmStudentConfig {
    /// The teacher's (fractional) timestep fed to the network; default: the teacher's timestep of the run
    /// schedule's `lambda(t_max)`, where the boundary condition holds at initialisation.
    #[serde(default)]
    pub teacher_timestep: Option<f64>,
}

/// The ADM student: the kit's teacher-initialised student over the teacher's network.
pub type AdmStudent = TeacherInitStudent<AdmBackbone>;

impl AdmStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<AdmStudent> {
        let teacher: &AdmTeacher = teacher_of(ctx, "adm-student", "adm")?;
        let den = teacher.denoiser();
        let s_max = den.discrete().student_timestep(self.teacher_timestep, ctx)?;
        let ucfg = den.unet().config().clone();
        let cfg = teacher.config();
        let init = TeacherInit { kind: "adm-student", weights: teacher.weights(), is_buffer: |_| false, time_embedding: "boot_time_embed", w_embedding: "boot_w_embed" };
        TeacherInitStudent::build(ctx, &init, |vb| {
            let unet = UNetModel::new(vb, &ucfg)?;
            let denoiser = AdmDenoiser::new(unet, den.schedule().clone(), cfg.prediction.into(), cfg.null_class, den.num_classes(), cfg.rescale_timesteps);
            Ok(AdmBackbone { denoiser, sinusoid: Timesteps::adm(ucfg.model_channels), s_max })
        })
    }
}

boot_sdk::register! {
    student "adm-student" => "the ADM teacher's network with zero-initialised target-time (and w) embeddings, initialised from the teacher";
    impl StudentConfig for AdmStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(self.build_student(ctx)?))
        }
    }
}

/// The teacher's network at the fixed timestep `s_max`.
pub struct AdmBackbone {
    denoiser: AdmDenoiser,
    sinusoid: Timesteps,
    s_max: f64,
}

impl AdmBackbone {
    /// The network with its schedule and conventions.
    pub fn denoiser(&self) -> &AdmDenoiser {
        &self.denoiser
    }

    /// The teacher timestep the network is run at.
    pub fn teacher_timestep(&self) -> f64 {
        self.s_max
    }
}

impl Backbone for AdmBackbone {
    fn feature_dim(&self) -> usize {
        self.denoiser.unet().config().model_channels
    }

    fn embedding_dim(&self) -> usize {
        self.denoiser.unet().config().time_embed_dim()
    }

    fn time_features(&self, times: &Times, dtype: DType, device: &Device) -> boot_sdk::Result<Tensor> {
        let target = self.denoiser.discrete().timesteps_of_lambda(&times.lambda);
        Ok(self.sinusoid.forward(&self.denoiser.timestep_input(&target, dtype, device)?)?)
    }

    fn w_features(&self, w: &Tensor) -> boot_sdk::Result<Tensor> {
        Ok(self.sinusoid.forward(w)?)
    }

    fn predict(&self, eps: &Tensor, cond: &Cond, extra: &Tensor) -> boot_sdk::Result<Tensor> {
        let n = eps.dim(0)?;
        let labels = self.denoiser.label_ids(cond, n)?;
        self.denoiser.predict_x0(eps, &vec![self.s_max; n], labels.as_deref(), Some(extra))
    }
}
