//! The BOOT student built from an EDM teacher's backbone: `[student] kind = "edm-student"`.
//!
//! ```toml
//! [student]
//! kind = "edm-student"
//! # sigma_max = 80.0   # default: the EDM sigma (sigma_t / alpha_t) of the run's schedule at t_max
//! ```
//!
//! The plugin kit's teacher-initialised student (`kit/src/teacher_init.rs`) over the teacher's
//! preconditioned network: the network's noise input is fixed at the EDM sigma of the run's schedule at
//! `t_max` (`sigma_max = sigma_t / alpha_t` there), and the new zero-initialised embeddings are added where
//! the class embedding goes (SongUNet: the noise embedding after `map_label`; DhariwalUNet: the embedding
//! after `map_label`):
//! `y(eps, t) = D(eps / alpha_max; sigma_max, labels, extra = E_t(t) + E_w(w))`.
//!
//! - `E_t(t) = boot_map_time(map_noise(c_noise(sigma_t / alpha_t)))`: the target time is embedded the way
//!   the teacher embeds noise levels (its own `map_noise` and preconditioner's `c_noise`; sigma clamped to
//!   at least 1e-6 so that `t = 0` is finite), then a zero-initialised linear layer.
//! - `E_w(w) = boot_map_w(positional(w))`: sinusoidal embedding of `w` (ADM style), zero-initialised layer.

use boot_kit::{teacher_of, Backbone, TeacherInit, TeacherInitStudent};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::PositionalEmbedding;
use boot_sdk::{Cond, InputError, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use boot_models::edm::EdmDenoiser;
use boot_models::edm::{is_buffer, EdmNetwork};
use crate::teacher::{one_hot_of, EdmTeacher};

/// `[student] kind = "edm-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdmStudentConfig {
    /// EDM sigma of the teacher-time input; default: the run schedule's `sigma_t / alpha_t` at `t_max`,
    /// where the boundary condition holds at initialisation.
    #[serde(default)]
    pub sigma_max: Option<f64>,
}

/// The EDM student: the kit's teacher-initialised student over the teacher's network.
pub type EdmStudent = TeacherInitStudent<EdmBackbone>;

impl EdmStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<EdmStudent> {
        let teacher: &EdmTeacher = teacher_of(ctx, "edm-student", "edm")?;
        let sigma_max = match self.sigma_max {
            Some(s) if s.is_finite() && s > 0.0 => s,
            Some(s) => return Err(InputError::config("student.sigma_max", format!("must be a positive number, got {s}")).into()),
            None => ctx.schedule.sigma(ctx.t_max) / ctx.schedule.alpha(ctx.t_max),
        };
        if !(sigma_max.is_finite() && sigma_max > 0.0) {
            let msg = format!("the run's schedule has EDM sigma {sigma_max} at t_max = {}; the student needs a positive finite one", ctx.t_max);
            return Err(InputError::config("train.t_max", msg).into());
        }
        let den = teacher.denoiser();
        let init = TeacherInit { kind: "edm-student", weights: teacher.weights(), is_buffer, time_embedding: "boot_map_time", w_embedding: "boot_map_w" };
        TeacherInitStudent::build(ctx, &init, |vb| {
            let net = EdmNetwork::new(vb, &den.spec().arch)?;
            let w_embedding = PositionalEmbedding::edm_dhariwal(net.noise_channels());
            Ok(EdmBackbone { denoiser: EdmDenoiser::from_parts(*den.precond(), net, den.spec().clone()), w_embedding, sigma_max, label_dim: den.label_dim() })
        })
    }
}

boot_sdk::register! {
    student "edm-student" => "the EDM teacher's backbone with zero-initialised target-time (and w) embeddings, initialised from the teacher";
    impl StudentConfig for EdmStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(self.build_student(ctx)?))
        }
    }
}

/// The teacher's preconditioned network at the fixed noise level `sigma_max`.
pub struct EdmBackbone {
    denoiser: EdmDenoiser,
    w_embedding: PositionalEmbedding,
    sigma_max: f64,
    label_dim: usize,
}

impl EdmBackbone {
    /// The preconditioner and network the student runs.
    pub fn denoiser(&self) -> &EdmDenoiser {
        &self.denoiser
    }

    /// The EDM sigma of the fixed teacher-time input.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }
}

impl Backbone for EdmBackbone {
    fn feature_dim(&self) -> usize {
        self.denoiser.network().noise_channels()
    }

    fn embedding_dim(&self) -> usize {
        self.denoiser.network().label_point_channels()
    }

    fn time_features(&self, times: &Times, dtype: DType, device: &Device) -> boot_sdk::Result<Tensor> {
        let sigma_t: Vec<f64> = times.sigma.iter().zip(&times.alpha).map(|(s, a)| (s / a).max(1e-6)).collect();
        let c_noise = self.denoiser.coefficient_tensors(&sigma_t, dtype, device)?.c_noise;
        Ok(self.denoiser.network().embed_noise(&c_noise)?)
    }

    fn w_features(&self, w: &Tensor) -> boot_sdk::Result<Tensor> {
        Ok(self.w_embedding.forward(w)?)
    }

    fn predict(&self, eps: &Tensor, cond: &Cond, extra: &Tensor) -> boot_sdk::Result<Tensor> {
        let (n, dtype, device) = (eps.dim(0)?, eps.dtype(), eps.device());
        let scale = (1.0 + self.sigma_max * self.sigma_max).sqrt();
        let x = eps.broadcast_mul(&boot_sdk::times::column(&vec![scale; n], dtype, device)?)?;
        let labels = one_hot_of(cond, n, self.label_dim, dtype, device)?;
        Ok(self.denoiser.forward(&x, &vec![self.sigma_max; n], labels.as_ref(), Some(extra))?)
    }
}
