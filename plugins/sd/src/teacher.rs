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

use std::path::PathBuf;
use std::sync::Arc;

use boot_kit::text_unet::{LatentDecoder, TextUNetTeacher};
use boot_kit::{PromptDataset, Prompts};
use boot_models::diffusers::AutoencoderKLDecoder;
use boot_sdk::candle::{DType, Tensor};
use boot_sdk::{Teacher, TeacherConfig, TeacherContext};
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
        let prompts = Prompts::from_config(&ctx.base_dir, &self.prompts)?;
        let variant = self.variant.as_deref();
        let vae_dir = pipe.component("vae");
        let vae_file = boot_kit::weights::weights_file(&vae_dir, "diffusion_pytorch_model", variant).display().to_string();
        let vae_weights = boot_kit::weights::load_component(&vae_dir, "diffusion_pytorch_model", variant, AutoencoderKLDecoder::keys, ctx.dtype, &ctx.device)?;
        let vae = boot_models::load_strict(&vae_file, vae_weights, ctx.dtype, &ctx.device, |vb| AutoencoderKLDecoder::new(vb, &pipe.vae))?;
        let text = TextEncoder::new(&pipe.component("tokenizer"), pipe.component("text_encoder"), pipe.text_encoder.clone(), self.variant.clone(), ctx.dtype, ctx.device.clone())?;
        let text_spec = (text.max_length(), text.hidden_size());
        let dataset = PromptDataset::new(prompts, Box::new(text));
        let teacher = TextUNetTeacher::load(&pipe.root, &pipe.unet, variant, pipe.discrete.clone(), dataset, text_spec, "sd", ctx)?;
        Ok(teacher.with_decoder(Box::new(VaeDecoder { vae, dtype: ctx.dtype })))
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

/// The Stable Diffusion teacher: the kit's text-conditional UNet teacher with the VAE decoder.
pub type SdTeacher = TextUNetTeacher;

/// The pipeline's VAE decoder: latents to pixels, as `StableDiffusionPipeline` decodes them.
struct VaeDecoder {
    vae: AutoencoderKLDecoder,
    dtype: DType,
}

impl LatentDecoder for VaeDecoder {
    fn decode(&self, x0: &Tensor) -> boot_sdk::Result<Tensor> {
        let n = x0.dim(0)?;
        let mut out = Vec::with_capacity(n.div_ceil(DECODE_BATCH));
        for start in (0..n).step_by(DECODE_BATCH) {
            let z = x0.narrow(0, start, DECODE_BATCH.min(n - start))?.to_dtype(self.dtype)?;
            out.push(self.vae.decode_latents(&z)?.to_dtype(DType::F32)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }
}
