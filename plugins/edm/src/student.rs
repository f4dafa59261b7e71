//! The BOOT student built from an EDM teacher's backbone: `[student] kind = "edm-student"`.
//!
//! Same architecture, initialised from the teacher's weights (paper section 4.1, appendix C.3). The
//! teacher's own noise input is fixed at `t_max`, and NEW zero-initialised embeddings of the target time `t`
//! (and of the guidance weight `w` for CFG students) are added where the class embedding goes (SongUNet: the
//! noise embedding after `map_label`; DhariwalUNet: the embedding after `map_label`). A fresh student
//! therefore equals the teacher's denoiser at `t_max` for every `t`:
//! `y(eps, t) = D(eps / alpha_max; sigma_max, labels, extra = E_t(t) + E_w(w))`.
//!
//! - `E_t(t) = boot_map_time(map_noise(c_noise(sigma_t / alpha_t)))`: the target time is embedded the way
//!   the teacher embeds noise levels (its own `map_noise` and preconditioner's `c_noise`; sigma clamped to
//!   at least 1e-6 so that `t = 0` is finite), then a zero-initialised linear layer.
//! - `E_w(w) = boot_map_w(positional(w))`: sinusoidal embedding of `w` (ADM style), zero-initialised layer.
//!
//! ```toml
//! [student]
//! kind = "edm-student"
//! # sigma_max = 80.0   # EDM sigma (sigma_t / alpha_t) of the run's schedule at t_max; default 80
//! ```
//!
//! `sigma_max` must be the run's EDM sigma at `t_max` for the boundary condition to hold exactly at
//! initialisation (core's `edm` schedule with `t_max = 1` gives its `sigma_max`, default 80). The student
//! context does not carry the schedule, hence this setting.

use std::collections::HashMap;

use boot_sdk::candle::{Tensor, Var};
use boot_models::{FrozenOverlay, Linear, PositionalEmbedding};
use boot_sdk::{Cond, InputError, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use boot_models::edm::EdmDenoiser;
use boot_models::edm::{is_buffer, EdmNetwork};
use crate::teacher::{column, EdmTeacher};

fn default_sigma_max() -> f64 {
    80.0
}

/// `[student] kind = "edm-student"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdmStudentConfig {
    /// EDM sigma of the teacher-time input, i.e. of the run's schedule at `t_max` (default 80).
    #[serde(default = "default_sigma_max")]
    pub sigma_max: f64,
}

impl Default for EdmStudentConfig {
    fn default() -> Self {
        Self { sigma_max: default_sigma_max() }
    }
}

impl EdmStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<EdmStudent> {
        let teacher = ctx
            .teacher
            .as_any()
            .downcast_ref::<EdmTeacher>()
            .ok_or_else(|| InputError::new("", "student.kind", "\"edm-student\" needs an \"edm\" teacher"))?;
        if !(self.sigma_max.is_finite() && self.sigma_max > 0.0) {
            return Err(InputError::new("", "student.sigma_max", format!("must be a positive number, got {}", self.sigma_max)).into());
        }
        let den = teacher.denoiser();
        let spec = den.spec().clone();
        let dtype = ctx.vb.dtype;
        let mut frozen = HashMap::new();
        for (k, v) in teacher.weights().iter().filter(|(k, _)| is_buffer(k)) {
            frozen.insert(k.clone(), v.to_device(&ctx.device)?.to_dtype(dtype)?);
        }
        let vb = FrozenOverlay::new(frozen, ctx.vb.clone()).into_var_builder(&ctx.device);
        let net = EdmNetwork::new(vb, &spec.arch)?;
        let (nc, lp) = (net.noise_channels(), net.label_point_channels());
        let map_time = Linear::zeros(ctx.vb.pp("boot_map_time"), nc, lp, true)?;
        let map_w = if ctx.w_conditioned { Some(Linear::zeros(ctx.vb.pp("boot_map_w"), nc, lp, true)?) } else { None };

        // Copy the teacher's parameters into the run's variables.
        let prefix = ctx.vb.prefix();
        let full = |n: &str| if prefix.is_empty() { n.to_string() } else { format!("{prefix}.{n}") };
        let data = ctx.varmap.data().lock().map_err(|_| boot_sdk::anyhow::anyhow!("edm-student: variable map lock poisoned"))?;
        let mut copied = 0usize;
        for (name, value) in teacher.weights().iter().filter(|(k, _)| !is_buffer(k)) {
            let var: &Var = data
                .get(&full(name))
                .ok_or_else(|| boot_sdk::anyhow::anyhow!("edm-student: the student has no parameter `{}` for the teacher's `{name}`", full(name)))?;
            var.set(&value.to_device(&ctx.device)?.to_dtype(var.dtype())?)?;
            copied += 1;
        }
        let new_params = 2 * (1 + usize::from(map_w.is_some()));
        let student_params = data.keys().filter(|k| prefix.is_empty() || k.starts_with(&format!("{prefix}."))).count();
        if student_params != copied + new_params {
            return Err(boot_sdk::anyhow::anyhow!(
                "edm-student: {student_params} variables under `{prefix}`, but {copied} copied from the teacher + {new_params} new"
            ));
        }
        drop(data);
        Ok(EdmStudent {
            denoiser: EdmDenoiser::from_parts(*den.precond(), net, spec),
            map_time,
            map_w,
            w_embedding: PositionalEmbedding::edm_dhariwal(nc),
            sigma_max: self.sigma_max,
            label_dim: den.label_dim(),
        })
    }
}

#[typetag::deserialize(name = "edm-student")]
impl StudentConfig for EdmStudentConfig {
    fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
        Ok(Box::new(self.build_student(ctx)?))
    }
}

/// The one-step student `y(eps, t, cond, w)`.
pub struct EdmStudent {
    denoiser: EdmDenoiser,
    map_time: Linear,
    map_w: Option<Linear>,
    w_embedding: PositionalEmbedding,
    sigma_max: f64,
    label_dim: usize,
}

impl EdmStudent {
    /// The backbone (preconditioner + network) the student runs.
    pub fn denoiser(&self) -> &EdmDenoiser {
        &self.denoiser
    }

    /// The EDM sigma of the fixed teacher-time input.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }
}

impl Student for EdmStudent {
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let n = eps.dim(0)?;
        let (dtype, device) = (eps.dtype(), eps.device());
        if times.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("edm-student: {} times for a batch of {n}", times.len()));
        }
        let sigma_t: Vec<f64> = times.sigma.iter().zip(&times.alpha).map(|(s, a)| (s / a).max(1e-6)).collect();
        // The embeddings are computed in f32 for a half-precision input (see `boot_models::embedding_dtype`).
        let work = boot_models::embedding_dtype(dtype);
        let c_noise = self.denoiser.coefficient_tensors(&sigma_t, work, device)?.c_noise;
        let net = self.denoiser.network();
        let mut extra = self.map_time.forward(&net.embed_noise(&c_noise)?)?;
        if let Some(mw) = &self.map_w {
            let w = w.ok_or_else(|| boot_sdk::anyhow::anyhow!("edm-student: conditioned on w, but no guidance weights were given"))?;
            if w.len() != n {
                return Err(boot_sdk::anyhow::anyhow!("edm-student: {} guidance weights for a batch of {n}", w.len()));
            }
            let wt = Tensor::from_vec(w.to_vec(), n, device)?.to_dtype(work)?;
            extra = (extra + mw.forward(&self.w_embedding.forward(&wt)?)?)?;
        }
        let scale = (1.0 + self.sigma_max * self.sigma_max).sqrt();
        let x = eps.broadcast_mul(&column(&vec![scale; n], dtype, device)?)?;
        let labels = match (&cond.class, self.label_dim) {
            (_, 0) | (None, _) => None,
            (Some(c), l) => Some(boot_models::one_hot_labels(c, l, dtype, device)?),
        };
        Ok(self.denoiser.forward(&x, &vec![self.sigma_max; n], labels.as_ref(), Some(&extra))?)
    }
}
