//! The DeepFloyd IF stage I teacher: `[teacher] kind = "if"`.
//!
//! ```toml
//! [teacher]
//! kind = "if"
//! path = "../models/IF-I-L-v1.0"       # a diffusers IFPipeline (stage I) folder, relative to the config
//! prompts = "prompts/compositional.txt" # the context dataset: .txt (one per line) or .jsonl ("prompt")
//! # variant = "fp16"                   # reads the *.fp16.safetensors files (and their shard indices)
//! ```
//!
//! The teacher denoises pixels `[3, 64, 64]` in `[-1, 1]` (IF-I) conditioned on T5 text embeddings. Each sample
//! draws a prompt from its seed; the prompts' embeddings are computed once, at the first draw, by the T5 encoder
//! (then dropped) and kept on the device, with the empty prompt's as the classifier-free-guidance null
//! condition (as `IFPipeline` with no negative prompt). The UNet's 6 output channels are eps and the learned
//! variance (`variance_type = "learned_range"`); the eps half is the teacher's prediction (the kit's
//! discrete-time denoiser splits it off), so classifier-free guidance acts on eps only, as in `IFPipeline`.
//! IF's dynamic thresholding (ratio 0.95, `sample_max_value` 1.5) is `[guidance] threshold = { kind =
//! "dynamic", percentile = 0.95, max_value = 1.5 }`. The run's dtype `f16` is refused (T5 overflows it);
//! `bf16` and `f32` are fine. `decode` is the identity (a pixel-space teacher).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use boot_kit::text_unet::predict_x0;
use boot_kit::{text_states, DiscreteDenoiser, PromptDataset, Prompts};
use boot_models::diffusers::UNet2DConditionModel;
use boot_sdk::candle::Tensor;
use boot_sdk::{BetaSchedule, Cond, CondSpec, InputError, NoiseSchedule, Teacher, TeacherConfig, TeacherContext, Times};
use serde::Deserialize;

use crate::pipeline::IfPipeline;
use crate::text::T5TextEncoder;

/// `[teacher] kind = "if"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IfTeacherConfig {
    /// The pipeline folder (`model_index.json`, `unet/`, `text_encoder/`, `tokenizer/`, `scheduler/`).
    pub path: PathBuf,
    /// The prompts file (`.txt` or `.jsonl`), relative to the config.
    pub prompts: PathBuf,
    /// Weight file variant: `fp16` reads `*.fp16.safetensors`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl IfTeacherConfig {
    /// Builds the teacher (also usable without the typetag registry).
    pub fn build_teacher(&self, ctx: &TeacherContext) -> boot_sdk::Result<IfTeacher> {
        let pipe = IfPipeline::read(&ctx.base_dir.join(&self.path))?;
        let prompts_path = ctx.base_dir.join(&self.prompts);
        if !prompts_path.is_file() {
            return Err(InputError::config("teacher.prompts", format!("{} is not a file", prompts_path.display())).into());
        }
        let prompts = Prompts::read(&prompts_path)?;
        let text = T5TextEncoder::new(&pipe.component("tokenizer"), pipe.component("text_encoder"), pipe.text_encoder.clone(), self.variant.clone(), ctx.dtype, ctx.device.clone())?;
        let variant = self.variant.as_deref();
        let unet_dir = pipe.component("unet");
        let unet_file = boot_kit::weights::weights_file(&unet_dir, "diffusion_pytorch_model", variant).display().to_string();
        let weights = boot_kit::weights::load_component(&unet_dir, "diffusion_pytorch_model", variant, |_| true, ctx.dtype, &ctx.device)?;
        let unet = boot_models::load_strict(&unet_file, weights.clone(), ctx.dtype, &ctx.device, |vb| Ok(UNet2DConditionModel::new(vb, &pipe.unet)?))?;
        let text_spec = (text.max_length(), text.hidden_size());
        let dataset = PromptDataset::new(prompts, Box::new(text));
        Ok(IfTeacher { discrete: pipe.discrete.clone(), unet, text_spec, dataset, weights: Arc::new(weights), pipe })
    }
}

boot_sdk::register! {
    teacher "if" => "a diffusers DeepFloyd IF stage I folder (T5 text encoder, IF UNet2DConditionModel with learned variance) distilled from a prompts file";
    impl TeacherConfig for IfTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(self.build_teacher(ctx)?))
        }
    }
}

/// An IF stage I UNet seen through the signal-prediction contract, with its prompts.
pub struct IfTeacher {
    pipe: IfPipeline,
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    text_spec: (usize, usize),
    dataset: PromptDataset,
    weights: Arc<HashMap<String, Tensor>>,
}

impl std::fmt::Debug for IfTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IfTeacher")
            .field("path", &self.pipe.root)
            .field("prediction", &self.discrete.prediction())
            .field("prompts", &self.dataset)
            .field("tensors", &self.weights.len())
            .finish()
    }
}

impl IfTeacher {
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
}

impl Teacher for IfTeacher {
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
            anyhow::bail!("if teacher: {} times for a batch of {n}", times.len());
        }
        let timesteps = self.discrete.timesteps_of_lambda(&times.lambda);
        predict_x0(&self.unet, &self.discrete, x_t, &timesteps, text_states(cond, n, "if")?, None)
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
