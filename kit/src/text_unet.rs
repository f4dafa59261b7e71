//! A text-conditional diffusers `UNet2DConditionModel` on a beta schedule (Stable Diffusion, DeepFloyd IF
//! stage I): the teacher's side ([`TextUNetTeacher`]: loading, denoising, the prompt dataset), its signal
//! prediction given text states ([`predict_x0`]) and the BOOT student's [`Backbone`] over
//! it ([`TextUNetBackbone`]): the network at the fixed teacher timestep `s_max`, input the noise `eps`, the
//! student's new embeddings added to the time embedding (alongside the text addition embedding of an IF UNet,
//! which sees the same text states).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_models::diffusers::{UNet2DConditionConfig, UNet2DConditionModel};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::{BetaSchedule, Cond, CondSpec, InputError, NoiseSchedule, StudentContext, Teacher, TeacherContext, Times};

use crate::{teacher_of, text_states, Backbone, DiscreteDenoiser, PromptDataset, TeacherInit, TeacherInitStudent};

/// Signal prediction of `unet` for `x_t` at schedule `timesteps` given text states `context` (no attention
/// mask reaches the UNet: neither `StableDiffusionPipeline` nor `IFPipeline` passes one), with `extra` added to
/// the time embedding (a student's new embeddings). Learned-variance output channels are split off.
pub fn predict_x0(unet: &UNet2DConditionModel, discrete: &DiscreteDenoiser, x_t: &Tensor, timesteps: &[f64], context: &Tensor, extra: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
    let t = discrete.timestep_input(timesteps, boot_models::embedding_dtype(x_t.dtype()), x_t.device())?;
    let out = unet.forward(x_t, &t, &context.to_dtype(x_t.dtype())?, None, None, extra)?;
    discrete.to_x0(x_t, &out, timesteps)
}

/// The teacher's text-conditional UNet at the fixed timestep `s_max`.
pub struct TextUNetBackbone {
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    s_max: f64,
    kind: &'static str,
}

impl TextUNetBackbone {
    /// `unet` run at teacher timestep `s_max` of `discrete`; `kind` names the student in errors.
    pub fn new(unet: UNet2DConditionModel, discrete: DiscreteDenoiser, s_max: f64, kind: &'static str) -> Self {
        Self { unet, discrete, s_max, kind }
    }

    /// The teacher timestep the network is run at.
    pub fn teacher_timestep(&self) -> f64 {
        self.s_max
    }
}

impl Backbone for TextUNetBackbone {
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
        predict_x0(&self.unet, &self.discrete, eps, &vec![self.s_max; n], text_states(cond, n, self.kind)?, Some(extra))
    }
}

/// How a latent teacher turns its samples into pixels (Stable Diffusion's VAE decoder).
pub trait LatentDecoder: Send + Sync {
    /// Pixels `[B, C', H', W']` in `[-1, 1]` of samples `x0`.
    fn decode(&self, x0: &Tensor) -> boot_sdk::Result<Tensor>;
}

/// A text-conditional UNet teacher: the network loaded from a pipeline's `unet/` folder, its schedule and
/// prediction target, the prompt dataset it draws its conditioning from, and, for a latent model, its
/// decoder. A family's plugin reads its pipeline folder and builds one (`kind = "sd"`, `"if"`); its student is
/// [`TextUNetTeacher::student`].
pub struct TextUNetTeacher {
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    weights: Arc<HashMap<String, Tensor>>,
    dataset: PromptDataset,
    text_spec: (usize, usize),
    decoder: Option<Box<dyn LatentDecoder>>,
    root: PathBuf,
    kind: &'static str,
}

impl std::fmt::Debug for TextUNetTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextUNetTeacher")
            .field("kind", &self.kind)
            .field("path", &self.root)
            .field("prediction", &self.discrete.prediction())
            .field("prompts", &self.dataset)
            .field("tensors", &self.weights.len())
            .finish()
    }
}

impl TextUNetTeacher {
    /// Loads `root/unet/diffusion_pytorch_model[.variant].safetensors` (or its shards) strictly into a UNet of
    /// `config`; `text_spec` is `(length, dim)` of the text states, `kind` the teacher's kind (errors, and
    /// which student may use it).
    #[allow(clippy::too_many_arguments)]
    pub fn load(root: &Path, config: &UNet2DConditionConfig, variant: Option<&str>, discrete: DiscreteDenoiser, dataset: PromptDataset, text_spec: (usize, usize), kind: &'static str, ctx: &TeacherContext) -> boot_sdk::Result<Self> {
        let unet_dir = root.join("unet");
        let file = crate::weights::weights_file(&unet_dir, "diffusion_pytorch_model", variant).display().to_string();
        let weights = crate::weights::load_component(&unet_dir, "diffusion_pytorch_model", variant, |_| true, ctx.dtype, &ctx.device)?;
        let unet = boot_models::load_strict(&file, weights.clone(), ctx.dtype, &ctx.device, |vb| Ok(UNet2DConditionModel::new(vb, config)?))?;
        Ok(Self { unet, discrete, weights: Arc::new(weights), dataset, text_spec, decoder: None, root: root.to_path_buf(), kind })
    }

    /// The same teacher decoding its samples with `decoder` (a latent model).
    pub fn with_decoder(self, decoder: Box<dyn LatentDecoder>) -> Self {
        Self { decoder: Some(decoder), ..self }
    }

    /// The UNet.
    pub fn unet(&self) -> &UNet2DConditionModel {
        &self.unet
    }

    /// Schedule, prediction target and timestep convention.
    pub fn discrete(&self) -> &DiscreteDenoiser {
        &self.discrete
    }

    /// The UNet's tensors by state-dict key, in the teacher's dtype and on its device.
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// The context dataset (the prompts file, its embeddings once encoded).
    pub fn dataset(&self) -> &PromptDataset {
        &self.dataset
    }

    /// The BOOT student `kind` over a copy of this UNet, its timestep input fixed at `teacher_timestep`
    /// (default: the teacher's timestep of the run schedule's `lambda(t_max)`); the run's teacher must be of
    /// `teacher_kind`, else an error naming `student.kind`.
    pub fn student(ctx: &StudentContext, kind: &'static str, teacher_kind: &str, teacher_timestep: Option<f64>) -> boot_sdk::Result<TeacherInitStudent<TextUNetBackbone>> {
        let this: &TextUNetTeacher = teacher_of(ctx, kind, teacher_kind)?;
        if this.kind != teacher_kind {
            return Err(InputError::config("student.kind", format!("\"{kind}\" needs a \"{teacher_kind}\" teacher, not \"{}\"", this.kind)).into());
        }
        this.student_of(ctx, kind, teacher_timestep)
    }

    fn student_of(&self, ctx: &StudentContext, kind: &'static str, teacher_timestep: Option<f64>) -> boot_sdk::Result<TeacherInitStudent<TextUNetBackbone>> {
        let discrete = self.discrete.clone();
        let s_max = discrete.student_timestep(teacher_timestep, ctx)?;
        let config = self.unet.config().clone();
        let init = TeacherInit { kind, weights: &self.weights, is_buffer: |_| false, time_embedding: "boot_time_embedding", w_embedding: "boot_w_embedding" };
        TeacherInitStudent::build(ctx, &init, |vb| Ok(TextUNetBackbone::new(UNet2DConditionModel::new(vb, &config)?, discrete, s_max, kind)))
    }
}

impl Teacher for TextUNetTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        // sample_size is checked when the pipeline is read.
        let c = self.unet.config();
        let size = c.sample_size.unwrap_or_default();
        [c.in_channels, size, size]
    }

    fn cond_spec(&self) -> CondSpec {
        CondSpec { text: Some(self.text_spec), ..CondSpec::default() }
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let n = x_t.dim(0)?;
        if times.len() != n {
            anyhow::bail!("{} teacher: {} times for a batch of {n}", self.kind, times.len());
        }
        let timesteps = self.discrete.timesteps_of_lambda(&times.lambda);
        predict_x0(&self.unet, &self.discrete, x_t, &timesteps, text_states(cond, n, self.kind)?, None)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        self.dataset.sample_cond(seeds)
    }

    fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        self.dataset.null_cond(cond)
    }

    fn prompt_cond(&self, prompts: &[String]) -> boot_sdk::Result<Cond> {
        self.dataset.prompt_cond(prompts)
    }

    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        let schedule: Arc<BetaSchedule> = self.discrete.schedule().clone();
        Some(schedule)
    }

    fn decode(&self, x0: &Tensor) -> boot_sdk::Result<Tensor> {
        match &self.decoder {
            Some(d) => d.decode(x0),
            None => Ok(x0.clone()),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
