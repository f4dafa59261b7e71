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
use boot_sdk::candle::Tensor;
use boot_sdk::{Cond, CondSpec, NoiseSchedule, Teacher, TeacherConfig, TeacherContext, Times};
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
        let unet = TextUNetTeacher::load(&pipe.component("unet"), &pipe.unet, self.variant.as_deref(), pipe.discrete.clone(), dataset, text_spec, "if", ctx)?;
        Ok(IfTeacher { unet, pipe })
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
    unet: TextUNetTeacher,
}

impl std::fmt::Debug for IfTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IfTeacher").field("path", &self.pipe.root).field("unet", &self.unet).finish()
    }
}

impl std::ops::Deref for IfTeacher {
    type Target = TextUNetTeacher;
    /// The text-conditional UNet (network, schedule, weights, prompt dataset).
    fn deref(&self) -> &TextUNetTeacher {
        &self.unet
    }
}

impl Teacher for IfTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.unet.sample_shape()
    }

    fn cond_spec(&self) -> CondSpec {
        self.unet.cond_spec()
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        self.unet.denoise(x_t, times, cond)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        self.unet.dataset().sample_cond(seeds)
    }

    fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        self.unet.dataset().null_cond(cond)
    }

    fn prompt_cond(&self, prompts: &[String]) -> boot_sdk::Result<Cond> {
        self.unet.dataset().prompt_cond(prompts)
    }

    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        Some(self.unet.native_schedule())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
