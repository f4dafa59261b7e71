//! The Stable Diffusion teacher: `[teacher] kind = "sd"`.
//!
//! ```toml
//! [teacher]
//! kind = "sd"
//! path = "stable-diffusion-2-1-base"   # a diffusers StableDiffusionPipeline folder, relative to the config
//! prompts = "prompts/compositional.txt" # the context dataset: .txt (one per line) or .jsonl ("prompt")
//! # variant = "fp16"                   # reads the *.fp16.safetensors files
//! ```
//!
//! The teacher denoises latents `[4, 64, 64]` (SD 2.1-base) conditioned on CLIP text embeddings. Each sample
//! draws a prompt from its seed; the prompts' embeddings are computed once, at the first draw, by the text
//! encoder (then dropped) and kept on the device, with the empty prompt's as the classifier-free-guidance
//! null condition (as `StableDiffusionPipeline` with no negative prompt). `decode` runs the VAE decoder
//! (`latents / scaling_factor`), so grids and `boot-host sample` show pixels. Time reaches the UNet through
//! the kit's discrete-time denoiser (`kit/src/discrete.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use boot_kit::{DiscreteDenoiser, PromptDataset, Prompts};
use boot_models::diffusers::{AutoencoderKLDecoder, UNet2DConditionModel};
use boot_sdk::candle::{DType, Tensor};
use boot_sdk::{BetaSchedule, Cond, CondSpec, InputError, NoiseSchedule, Teacher, TeacherConfig, TeacherContext, Times};
use serde::Deserialize;

use crate::pipeline::SdPipeline;
use crate::text::TextEncoder;

/// Samples per VAE decoder call (a 512-pixel decode holds several GB of activations per 8 images).
const DECODE_BATCH: usize = 8;

/// `[teacher] kind = "sd"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdTeacherConfig {
    /// The pipeline folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`).
    pub path: PathBuf,
    /// The prompts file (`.txt` or `.jsonl`), relative to the config.
    pub prompts: PathBuf,
    /// Weight file variant: `fp16` reads `*.fp16.safetensors`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl SdTeacherConfig {
    /// Builds the teacher (also usable without the typetag registry).
    pub fn build_teacher(&self, ctx: &TeacherContext) -> boot_sdk::Result<SdTeacher> {
        let pipe = SdPipeline::read(&ctx.base_dir.join(&self.path))?;
        let prompts_path = ctx.base_dir.join(&self.prompts);
        if !prompts_path.is_file() {
            return Err(InputError::config("teacher.prompts", format!("{} is not a file", prompts_path.display())).into());
        }
        let prompts = Prompts::read(&prompts_path)?;
        let variant = self.variant.as_deref();
        let unet_dir = pipe.component("unet");
        let unet_file = boot_kit::weights::weights_file(&unet_dir, "diffusion_pytorch_model", variant).display().to_string();
        let weights = boot_kit::weights::load_component(&unet_dir, "diffusion_pytorch_model", variant, |_| true, ctx.dtype, &ctx.device)?;
        let unet = boot_models::load_strict(&unet_file, weights.clone(), ctx.dtype, &ctx.device, |vb| Ok(UNet2DConditionModel::new(vb, &pipe.unet)?))?;
        let vae_dir = pipe.component("vae");
        let vae_file = boot_kit::weights::weights_file(&vae_dir, "diffusion_pytorch_model", variant).display().to_string();
        let vae_weights = boot_kit::weights::load_component(&vae_dir, "diffusion_pytorch_model", variant, AutoencoderKLDecoder::keys, ctx.dtype, &ctx.device)?;
        let vae = boot_models::load_strict(&vae_file, vae_weights, ctx.dtype, &ctx.device, |vb| AutoencoderKLDecoder::new(vb, &pipe.vae))?;
        let text = TextEncoder::new(&pipe.component("tokenizer"), pipe.component("text_encoder"), pipe.text_encoder.clone(), self.variant.clone(), ctx.dtype, ctx.device.clone())?;
        let text_spec = (text.max_length(), text.hidden_size());
        let dataset = PromptDataset::new(prompts, Box::new(text));
        Ok(SdTeacher { discrete: pipe.discrete.clone(), unet, vae, text_spec, dataset, weights: Arc::new(weights), pipe })
    }
}

boot_sdk::register! {
    teacher "sd" => "a diffusers Stable Diffusion folder (CLIP text encoder, UNet2DConditionModel, AutoencoderKL) distilled from a prompts file";
    impl TeacherConfig for SdTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(self.build_teacher(ctx)?))
        }
    }
}

/// A Stable Diffusion UNet seen through the signal-prediction contract, with its prompts and VAE.
pub struct SdTeacher {
    pipe: SdPipeline,
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    vae: AutoencoderKLDecoder,
    text_spec: (usize, usize),
    dataset: PromptDataset,
    weights: Arc<HashMap<String, Tensor>>,
}

impl std::fmt::Debug for SdTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdTeacher")
            .field("path", &self.pipe.root)
            .field("prediction", &self.discrete.prediction())
            .field("prompts", &self.dataset)
            .field("tensors", &self.weights.len())
            .finish()
    }
}

impl SdTeacher {
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

/// The text states of a batch of `n`.
pub fn text_states(cond: &Cond, n: usize) -> boot_sdk::Result<&Tensor> {
    boot_kit::text_states(cond, n, "sd")
}

pub use boot_kit::text_unet::predict_x0;

impl Teacher for SdTeacher {
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
            anyhow::bail!("sd teacher: {} times for a batch of {n}", times.len());
        }
        let timesteps = self.discrete.timesteps_of_lambda(&times.lambda);
        predict_x0(&self.unet, &self.discrete, x_t, &timesteps, text_states(cond, n)?, None)
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
        let n = x0.dim(0)?;
        let mut out = Vec::with_capacity(n.div_ceil(DECODE_BATCH));
        for start in (0..n).step_by(DECODE_BATCH) {
            let z = x0.narrow(0, start, DECODE_BATCH.min(n - start))?.to_dtype(self.unet_dtype())?;
            out.push(self.vae.decode_latents(&z)?.to_dtype(DType::F32)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl SdTeacher {
    fn unet_dtype(&self) -> DType {
        self.weights.values().next().map(|t| t.dtype()).unwrap_or(DType::F32)
    }
}
