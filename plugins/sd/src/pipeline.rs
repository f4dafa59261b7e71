//! A diffusers Stable Diffusion folder as `StableDiffusionPipeline.save_pretrained` writes it:
//!
//! ```text
//! model_index.json                 components by name: ["diffusers", "UNet2DConditionModel"], ...
//! scheduler/scheduler_config.json  training schedule and prediction type (kit/src/scheduler.rs)
//! text_encoder/config.json         CLIPTextModel; model[.fp16].safetensors or sharded (kit/src/weights.rs)
//! tokenizer/                       vocab.json + merges.txt, or tokenizer.json
//! unet/config.json                 UNet2DConditionModel; diffusion_pytorch_model[.fp16].safetensors
//! vae/config.json                  AutoencoderKL; only the decoder is loaded (the encoder is never needed)
//! ```
//!
//! Missing components, components of another class (SDXL's `text_encoder_2`, an IF UNet) and settings the
//! teacher cannot honour are errors naming the file and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_kit::{DiscreteDenoiser, PipelineIndex, SchedulerConfig};
use boot_models::diffusers::{AutoencoderKLConfig, PerBlock, UNet2DConditionConfig};
use boot_models::transformers::ClipTextConfig;
use boot_sdk::InputError;

/// The components of a Stable Diffusion folder (`kit/src/pipeline_index.rs`).
const INDEX: PipelineIndex<'static> = PipelineIndex { pipeline: "a Stable Diffusion pipeline", components: COMPONENTS, refused: REFUSED };

/// The classes each component must have (`model_index.json` names `[library, class]`).
const COMPONENTS: &[(&str, &[&str])] = &[
    ("unet", &["UNet2DConditionModel"]),
    ("vae", &["AutoencoderKL"]),
    ("text_encoder", &["CLIPTextModel"]),
    ("tokenizer", &["CLIPTokenizer", "CLIPTokenizerFast"]),
    ("scheduler", &["DDIMScheduler", "PNDMScheduler", "DDPMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "HeunDiscreteScheduler"]),
];

/// Components of other pipelines that this teacher does not take.
const REFUSED: &[(&str, &str)] = &[("text_encoder_2", "SDXL pipelines (two text encoders) are not supported"), ("image_encoder", "image-conditioned pipelines are not supported")];

/// The configs of a Stable Diffusion folder (weights are read by each component's loader).
#[derive(Debug, Clone)]
pub struct SdPipeline {
    /// The folder.
    pub root: PathBuf,
    /// `unet/config.json`.
    pub unet: UNet2DConditionConfig,
    /// `vae/config.json`.
    pub vae: AutoencoderKLConfig,
    /// `text_encoder/config.json`.
    pub text_encoder: ClipTextConfig,
    /// Schedule, prediction target and timestep convention of `scheduler/scheduler_config.json`.
    pub discrete: DiscreteDenoiser,
}

impl SdPipeline {
    /// Reads and cross-checks the folder's configs.
    pub fn read(root: &Path) -> boot_sdk::Result<Self> {
        if !root.is_dir() {
            return Err(InputError::config("teacher.path", format!("{} is not a folder (a diffusers Stable Diffusion pipeline with model_index.json)", root.display())).into());
        }
        INDEX.check(&root.join("model_index.json"))?;
        let scheduler_path = root.join("scheduler").join("scheduler_config.json");
        let scheduler = SchedulerConfig::read(&scheduler_path)?;
        let schedule = Arc::new(scheduler.beta_schedule(&scheduler_path.display().to_string())?);
        let discrete = DiscreteDenoiser::new(schedule, scheduler.prediction(), 1.0);
        let unet_path = root.join("unet").join("config.json");
        let unet = UNet2DConditionConfig::from_json_file(&unet_path)?;
        let vae = AutoencoderKLConfig::from_json_file(&root.join("vae").join("config.json"))?;
        let text_path = root.join("text_encoder").join("config.json");
        let text_encoder = ClipTextConfig::from_json_file(&text_path)?;
        let unet_source = unet_path.display().to_string();
        if scheduler.learned_variance() {
            return Err(InputError::new(scheduler_path.display().to_string(), "variance_type", "a learned variance is not a Stable Diffusion setting").into());
        }
        if unet.out_channels != unet.in_channels {
            return Err(InputError::new(&unet_source, "out_channels", format!("{} for in_channels {}: the latent teacher predicts one value per latent channel", unet.out_channels, unet.in_channels)).into());
        }
        if unet.in_channels != vae.latent_channels {
            return Err(InputError::new(&unet_source, "in_channels", format!("{}, but the VAE has latent_channels {}", unet.in_channels, vae.latent_channels)).into());
        }
        let dims = match &unet.cross_attention_dim {
            PerBlock::One(d) => vec![*d],
            PerBlock::Many(d) => d.clone(),
        };
        if dims.iter().any(|&d| d != text_encoder.hidden_size) {
            return Err(InputError::new(&unet_source, "cross_attention_dim", format!("{dims:?}, but the text encoder's hidden_size is {}", text_encoder.hidden_size)).into());
        }
        if unet.sample_size.is_none() {
            return Err(InputError::new(&unet_source, "sample_size", "missing: the teacher needs the latent size").into());
        }
        Ok(Self { root: root.to_path_buf(), unet, vae, text_encoder, discrete })
    }

    /// The folder of component `name`.
    pub fn component(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}
