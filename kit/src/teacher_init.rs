//! The BOOT student initialised from its teacher (paper section 4.1, appendix C.3): the teacher's own
//! network, its weights copied, its time input fixed at the run's `t_max`, and NEW zero-initialised
//! embeddings of the target time `t` (and of the guidance weight `w` for CFG students) added where the
//! network adds its class embedding:
//!
//! `y(eps, t, c, w) = teacher_x0(eps at t_max; c, extra = E_t(t) + E_w(w))`, `E = zero-initialised
//! linear(features)`.
//!
//! A fresh student therefore equals the teacher's denoiser at `t_max` for every `t` and `w`
//! ([`crate::testing::fresh_student_error`] checks it). A family provides only a [`Backbone`]: how its
//! network embeds a time and a `w`, and its prediction at the fixed teacher time.

use std::collections::HashMap;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::candle_nn::VarBuilder;
use boot_models::{FrozenOverlay, Linear};
use boot_sdk::{anyhow, Cond, InputError, Student, StudentContext, Teacher, Times};

/// The teacher's network as a teacher-initialised student runs it.
pub trait Backbone: Send + Sync {
    /// Width of [`Backbone::time_features`] and [`Backbone::w_features`]: the input of the new embeddings.
    fn feature_dim(&self) -> usize;
    /// Width of the network's conditioning vector the new embeddings are added to.
    fn embedding_dim(&self) -> usize;
    /// Features of the target times, the way the network embeds its own time or noise level (before its
    /// learned layers), in `dtype`.
    fn time_features(&self, times: &Times, dtype: DType, device: &Device) -> boot_sdk::Result<Tensor>;
    /// Features of the guidance weights `w` (`[B]`, in the embeddings' dtype).
    fn w_features(&self, w: &Tensor) -> boot_sdk::Result<Tensor>;
    /// The teacher's signal prediction for noise `eps` taken as `x_{t_max}`, at the fixed teacher time,
    /// conditioned on `cond`, with `extra` added to the network's conditioning vector.
    fn predict(&self, eps: &Tensor, cond: &Cond, extra: &Tensor) -> boot_sdk::Result<Tensor>;
}

/// How a family's teacher initialises its student.
pub struct TeacherInit<'a> {
    /// The student's kind, for messages (`"edm-student"`).
    pub kind: &'static str,
    /// The teacher's tensors by state-dict key.
    pub weights: &'a HashMap<String, Tensor>,
    /// Which of them are buffers (constants served as they are, not trained).
    pub is_buffer: fn(&str) -> bool,
    /// Parameter prefix of the target-time embedding (`boot_map_time`); kept per family so that existing
    /// checkpoints load.
    pub time_embedding: &'static str,
    /// Parameter prefix of the `w` embedding (`boot_map_w`).
    pub w_embedding: &'static str,
}

/// The teacher as the concrete type `T` its student needs, or an input error naming `student.kind`.
pub fn teacher_of<'a, T: 'static>(ctx: &StudentContext<'a>, student_kind: &str, teacher_kind: &str) -> boot_sdk::Result<&'a T> {
    let teacher: &'a dyn Teacher = ctx.teacher;
    let article = if teacher_kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    teacher
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| InputError::config("student.kind", format!("\"{student_kind}\" needs {article} \"{teacher_kind}\" teacher")).into())
}

/// The student: a [`Backbone`] with zero-initialised embeddings of `t` and `w`.
pub struct TeacherInitStudent<B> {
    kind: &'static str,
    backbone: B,
    time_embedding: Linear,
    w_embedding: Option<Linear>,
}

impl<B: Backbone> TeacherInitStudent<B> {
    /// Builds the student in the run's variables: `make` builds the backbone from a builder that serves the
    /// teacher's buffers as constants and creates every parameter in the run's variable map; the teacher's
    /// parameters are then copied in, and the count is checked (teacher parameters + new embeddings, nothing
    /// else).
    pub fn build(ctx: &StudentContext, init: &TeacherInit, make: impl FnOnce(VarBuilder) -> boot_sdk::Result<B>) -> boot_sdk::Result<Self> {
        let mut frozen = HashMap::new();
        for (k, v) in init.weights.iter().filter(|(k, _)| (init.is_buffer)(k)) {
            frozen.insert(k.clone(), v.to_device(&ctx.device)?.to_dtype(ctx.vb.dtype())?);
        }
        let vb = if frozen.is_empty() { ctx.vb.clone() } else { FrozenOverlay::new(frozen, ctx.vb.clone()).into_var_builder(&ctx.device) };
        let backbone = make(vb)?;
        let (f, e) = (backbone.feature_dim(), backbone.embedding_dim());
        let time_embedding = Linear::zeros(ctx.vb.pp(init.time_embedding), f, e, true)?;
        let w_embedding = if ctx.w_conditioned { Some(Linear::zeros(ctx.vb.pp(init.w_embedding), f, e, true)?) } else { None };
        let new_params = 2 * (1 + usize::from(w_embedding.is_some()));
        copy_teacher_weights(ctx, init, new_params)?;
        Ok(Self { kind: init.kind, backbone, time_embedding, w_embedding })
    }

    /// The network the student runs.
    pub fn backbone(&self) -> &B {
        &self.backbone
    }
}

/// Copies the teacher's parameters into the run's variables under the student's prefix and checks that the
/// student has exactly those plus `new_params` variables.
fn copy_teacher_weights(ctx: &StudentContext, init: &TeacherInit, new_params: usize) -> boot_sdk::Result<()> {
    let kind = init.kind;
    let prefix = ctx.vb.prefix();
    let full = |n: &str| if prefix.is_empty() { n.to_string() } else { format!("{prefix}.{n}") };
    let data = ctx.varmap.data().lock().map_err(|_| anyhow::anyhow!("{kind}: variable map lock poisoned"))?;
    let mut copied = 0usize;
    for (name, value) in init.weights.iter().filter(|(k, _)| !(init.is_buffer)(k)) {
        let var: &Var = data
            .get(&full(name))
            .ok_or_else(|| anyhow::anyhow!("{kind}: the student has no parameter `{}` for the teacher's `{name}`", full(name)))?;
        var.set(&value.to_device(&ctx.device)?.to_dtype(var.dtype())?)?;
        copied += 1;
    }
    let own = data.keys().filter(|k| prefix.is_empty() || k.starts_with(&format!("{prefix}."))).count();
    if own != copied + new_params {
        anyhow::bail!("{kind}: {own} variables under `{prefix}`, but {copied} copied from the teacher + {new_params} new");
    }
    Ok(())
}

impl<B: Backbone> Student for TeacherInitStudent<B> {
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let (n, kind) = (eps.dim(0)?, self.kind);
        if times.len() != n {
            anyhow::bail!("{kind}: {} times for a batch of {n}", times.len());
        }
        // The embeddings are computed in f32 for a half-precision input (see `boot_models::embedding_dtype`).
        let (dtype, device) = (boot_models::embedding_dtype(eps.dtype()), eps.device());
        let mut extra = self.time_embedding.forward(&self.backbone.time_features(times, dtype, device)?)?;
        if let Some(we) = &self.w_embedding {
            let w = w.ok_or_else(|| anyhow::anyhow!("{kind}: conditioned on w, but no guidance weights were given"))?;
            if w.len() != n {
                anyhow::bail!("{kind}: {} guidance weights for a batch of {n}", w.len());
            }
            let wt = boot_sdk::times::vector(w, dtype, device)?;
            extra = (extra + we.forward(&self.backbone.w_features(&wt)?)?)?;
        }
        self.backbone.predict(eps, cond, &extra)
    }
}
