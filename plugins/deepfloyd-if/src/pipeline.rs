//! A diffusers DeepFloyd IF stage I folder as `IFPipeline.save_pretrained` writes it:
//!
//! ```text
//! model_index.json                 components by name: ["diffusers", "UNet2DConditionModel"], ...
//! scheduler/scheduler_config.json  DDPMScheduler: squaredcos_cap_v2, epsilon, variance_type learned_range
//! text_encoder/config.json         T5EncoderModel; model[.fp16].safetensors or sharded (kit/src/weights.rs)
//! tokenizer/                       tokenizer.json or spiece.model (T5)
//! unet/config.json                 UNet2DConditionModel (IF layout); diffusion_pytorch_model[.fp16].safetensors
//! safety_checker/, feature_extractor/, watermarker/   optional, null or present: ignored
//! ```
//!
//! Missing components, components of another class, a stage II UNet and settings the teacher cannot honour
//! are errors naming the file and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_kit::{DiscreteDenoiser, PipelineIndex, SchedulerConfig};
use boot_models::diffusers::{PerBlock, UNet2DConditionConfig};
use boot_models::transformers::T5Config;
use boot_sdk::InputError;

/// The classes each component must have (`model_index.json` names `[library, class]`).
const COMPONENTS: &[(&str, &[&str])] = &[
    ("unet", &["UNet2DConditionModel"]),
    ("text_encoder", &["T5EncoderModel"]),
    ("tokenizer", &["T5Tokenizer", "T5TokenizerFast"]),
    ("scheduler", &["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "EulerDiscreteScheduler"]),
];

/// Components of other pipelines that this teacher does not take.
const REFUSED: &[(&str, &str)] = &[("image_noising_scheduler", "a stage II (super-resolution) pipeline is not supported yet: give the stage I folder")];

/// The components of an IF stage I folder (`kit/src/pipeline_index.rs`).
const INDEX: PipelineIndex<'static> = PipelineIndex { pipeline: "an IF stage I pipeline", components: COMPONENTS, refused: REFUSED };

/// The configs of an IF stage I folder (weights are read by each component's loader).
#[derive(Debug, Clone)]
pub struct IfPipeline {
    /// The folder.
    pub root: PathBuf,
    /// `unet/config.json`.
    pub unet: UNet2DConditionConfig,
    /// `text_encoder/config.json`.
    pub text_encoder: T5Config,
    /// Schedule, prediction target and timestep convention of `scheduler/scheduler_config.json`.
    pub discrete: DiscreteDenoiser,
}

impl IfPipeline {
    /// Reads and cross-checks the folder's configs.
    pub fn read(root: &Path) -> boot_sdk::Result<Self> {
        if !root.is_dir() {
            return Err(InputError::config("teacher.path", format!("{} is not a folder (a diffusers IF stage I pipeline with model_index.json)", root.display())).into());
        }
        INDEX.check(&root.join("model_index.json"))?;
        let scheduler_path = root.join("scheduler").join("scheduler_config.json");
        let scheduler = SchedulerConfig::read(&scheduler_path)?;
        let schedule = Arc::new(scheduler.beta_schedule(&scheduler_path.display().to_string())?);
        let discrete = DiscreteDenoiser::new(schedule, scheduler.prediction(), 1.0);
        let unet_path = root.join("unet").join("config.json");
        let unet = UNet2DConditionConfig::from_json_file(&unet_path)?;
        let text_path = root.join("text_encoder").join("config.json");
        let text_encoder = T5Config::from_json_file(&text_path)?;
        let unet_source = unet_path.display().to_string();
        let out = if scheduler.learned_variance() { 2 * unet.in_channels } else { unet.in_channels };
        if unet.out_channels != out {
            let what = if scheduler.learned_variance() { "the scheduler's learned variance needs twice the in_channels" } else { "one value per channel (the scheduler has no learned variance)" };
            return Err(InputError::new(&unet_source, "out_channels", format!("{} for in_channels {}: {what}", unet.out_channels, unet.in_channels)).into());
        }
        if unet.class_embed_type.is_some() || unet.num_class_embeds.is_some() {
            return Err(InputError::new(&unet_source, "class_embed_type", "a class-conditioned (stage II) UNet is not supported yet").into());
        }
        let text_dim = match (unet.encoder_hid_dim, &unet.cross_attention_dim) {
            (Some(d), _) => d,
            (None, PerBlock::One(d)) => *d,
            (None, PerBlock::Many(d)) => d[0],
        };
        if text_dim != text_encoder.d_model {
            let key = if unet.encoder_hid_dim.is_some() { "encoder_hid_dim" } else { "cross_attention_dim" };
            return Err(InputError::new(&unet_source, key, format!("{text_dim}, but the text encoder's d_model is {}", text_encoder.d_model)).into());
        }
        if unet.sample_size.is_none() {
            return Err(InputError::new(&unet_source, "sample_size", "missing: the teacher needs the image size").into());
        }
        Ok(Self { root: root.to_path_buf(), unet, text_encoder, discrete })
    }

    /// The folder of component `name`.
    pub fn component(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}
