//! The BOOT student built from an ADM teacher: `[student] kind = "adm-student"`.
//!
//! Same architecture, initialised from the teacher's weights (paper section 4.1, appendix C.3). The
//! network's own timestep input is fixed at the teacher's timestep of `t_max`, its input is the noise
//! `eps` itself (the variance-preserving `x_{t_max}` the boundary condition compares at), and NEW
//! zero-initialised embeddings of the target time `t` (and of the guidance weight `w` for CFG students) are
//! added where guided-diffusion adds the class embedding (to `emb`, after `time_embed`):
//!
//! `y(eps, t, c, w) = x0_hat(eps; s_max, c, extra = E_t(t) + E_w(w))`,
//!
//! - `E_t(t) = boot_time_embed(timestep_embedding(s(t)))`: the target time as the teacher's own
//!   fractional timestep `s(t)` of `lambda_t`, embedded with the network's sinusoid, then a linear layer
//!   (`model_channels -> 4 model_channels`) initialised to zero;
//! - `E_w(w) = boot_w_embed(timestep_embedding(w))`: the same for `w`;
//! - `x0_hat` converts an eps prediction with the schedule's `alpha`, `sigma` at `s_max`, as the teacher.
//!
//! A fresh student therefore equals the teacher's denoiser at `t_max` for every `t` and `w` (same label).
//!
//! ```toml
//! [student]
//! kind = "adm-student"
//! # teacher_timestep = 989.01  # default: the teacher's timestep of t_max on its native schedule
//! ```
//!
//! `teacher_timestep` only needs setting when the run uses another schedule than the teacher's native
//! one (the student context does not carry the schedule): it must be the teacher's timestep of the
//! run's `lambda(t_max)` for the boundary condition to hold at initialisation.

use boot_sdk::candle::{Tensor, Var};
use boot_models::adm::UNetModel;
use boot_models::embeddings::timesteps::Timesteps;
use boot_models::Linear;
use boot_sdk::{Cond, InputError, NoiseSchedule, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use crate::denoiser::AdmDenoiser;
use crate::teacher::AdmTeacher;

/// `[student] kind = "adm-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmStudentConfig {
    /// The teacher's (fractional) timestep fed to the network; default: its native schedule's timestep of
    /// the run's `t_max`.
    #[serde(default)]
    pub teacher_timestep: Option<f64>,
}

impl AdmStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<AdmStudent> {
        let teacher = ctx
            .teacher
            .as_any()
            .downcast_ref::<AdmTeacher>()
            .ok_or_else(|| InputError::config("student.kind", "\"adm-student\" needs an \"adm\" teacher"))?;
        let den = teacher.denoiser();
        let schedule = den.schedule();
        let last = (schedule.num_timesteps() - 1) as f64;
        let s_max = match self.teacher_timestep {
            Some(s) if (0.0..=last).contains(&s) => s,
            Some(s) => return Err(InputError::config("student.teacher_timestep", format!("must lie in [0, {last}], got {s}")).into()),
            None => schedule.timestep_of_lambda(schedule.lambda(ctx.t_max)),
        };
        let ucfg = den.unet().config().clone();
        let unet = UNetModel::new(ctx.vb.clone(), &ucfg)?;
        let (mc, ted) = (ucfg.model_channels, ucfg.time_embed_dim());
        let time_embed = Linear::zeros(ctx.vb.pp("boot_time_embed"), mc, ted, true)?;
        let w_embed = if ctx.w_conditioned { Some(Linear::zeros(ctx.vb.pp("boot_w_embed"), mc, ted, true)?) } else { None };

        // Copy the teacher's weights into the run's variables.
        let prefix = ctx.vb.prefix();
        let full = |n: &str| if prefix.is_empty() { n.to_string() } else { format!("{prefix}.{n}") };
        let data = ctx.varmap.data().lock().map_err(|_| boot_sdk::anyhow::anyhow!("adm-student: variable map lock poisoned"))?;
        for (name, value) in teacher.weights().iter() {
            let var: &Var = data
                .get(&full(name))
                .ok_or_else(|| boot_sdk::anyhow::anyhow!("adm-student: the student has no parameter `{}` for the teacher's `{name}`", full(name)))?;
            var.set(&value.to_device(&ctx.device)?.to_dtype(var.dtype())?)?;
        }
        let new_params = 2 * (1 + usize::from(w_embed.is_some()));
        let own = data.keys().filter(|k| prefix.is_empty() || k.starts_with(&format!("{prefix}."))).count();
        if own != teacher.weights().len() + new_params {
            return Err(boot_sdk::anyhow::anyhow!(
                "adm-student: {own} variables under `{prefix}`, but {} copied from the teacher + {new_params} new",
                teacher.weights().len()
            ));
        }
        drop(data);
        let cfg = teacher.config();
        let denoiser = AdmDenoiser::new(unet, schedule.clone(), cfg.prediction, cfg.null_class, den.num_classes(), cfg.rescale_timesteps);
        Ok(AdmStudent { denoiser, time_embed, w_embed, sinusoid: Timesteps::adm(mc), s_max })
    }
}

#[typetag::deserialize(name = "adm-student")]
impl StudentConfig for AdmStudentConfig {
    fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
        Ok(Box::new(self.build_student(ctx)?))
    }
}

/// The one-step student `y(eps, t, c, w)`.
pub struct AdmStudent {
    denoiser: AdmDenoiser,
    time_embed: Linear,
    w_embed: Option<Linear>,
    sinusoid: Timesteps,
    s_max: f64,
}

impl AdmStudent {
    /// The network with its schedule and conventions.
    pub fn denoiser(&self) -> &AdmDenoiser {
        &self.denoiser
    }

    /// The teacher timestep the network is run at.
    pub fn teacher_timestep(&self) -> f64 {
        self.s_max
    }
}

impl Student for AdmStudent {
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let n = eps.dim(0)?;
        // The embeddings are computed in f32 for a half-precision input (see `boot_models::embedding_dtype`).
        let (dtype, device) = (boot_models::embedding_dtype(eps.dtype()), eps.device());
        if times.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("adm-student: {} times for a batch of {n}", times.len()));
        }
        let target = self.denoiser.timesteps_of_lambda(&times.lambda);
        let t_in = self.denoiser.timestep_input(&target, dtype, device)?;
        let mut extra = self.time_embed.forward(&self.sinusoid.forward(&t_in)?)?;
        if let Some(we) = &self.w_embed {
            let w = w.ok_or_else(|| boot_sdk::anyhow::anyhow!("adm-student: conditioned on w, but no guidance weights were given"))?;
            if w.len() != n {
                return Err(boot_sdk::anyhow::anyhow!("adm-student: {} guidance weights for a batch of {n}", w.len()));
            }
            let wt = Tensor::from_vec(w.to_vec(), n, device)?.to_dtype(dtype)?;
            extra = (extra + we.forward(&self.sinusoid.forward(&wt)?)?)?;
        }
        let labels = self.denoiser.label_ids(cond, n)?;
        self.denoiser.predict_x0(eps, &vec![self.s_max; n], labels.as_deref(), Some(&extra))
    }
}
