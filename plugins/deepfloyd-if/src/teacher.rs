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

use std::path::PathBuf;
use std::sync::Arc;

use boot_kit::text_unet::TextUNetTeacher;
use boot_kit::{PromptDataset, Prompts};
use boot_sdk::{Teacher, TeacherConfig, TeacherContext};
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
        let prompts = Prompts::from_config(&ctx.base_dir, &self.prompts)?;
        let text = T5TextEncoder::new(&pipe.component("tokenizer"), pipe.component("text_encoder"), pipe.text_encoder.clone(), self.variant.clone(), ctx.dtype, ctx.device.clone())?;
        let text_spec = (text.max_length(), text.hidden_size());
        let dataset = PromptDataset::new(prompts, Box::new(text));
        TextUNetTeacher::load(&pipe.root, &pipe.unet, self.variant.as_deref(), pipe.discrete.clone(), dataset, text_spec, "if", ctx)
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

/// The IF stage I teacher: the kit's text-conditional UNet teacher (pixels: no decoder).
pub type IfTeacher = TextUNetTeacher;
