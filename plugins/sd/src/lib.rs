//! sd plugin: a diffusers Stable Diffusion folder (SD 1.x, SD 2.x base and 768 v-prediction) as a latent
//! text-to-image boot teacher distilled from prompts alone (`kind = "sd"`), and a BOOT student initialised
//! from it (`kind = "sd-student"`).
//!
//! The folder loads as `StableDiffusionPipeline.save_pretrained` writes it ([`pipeline`]); the networks are the
//! model library's `UNet2DConditionModel`, `ClipTextModel` + `ClipTokenizer` and `AutoencoderKLDecoder`
//! (parity in `models/tests/`); time and prediction target go through the kit's discrete-time denoiser, the
//! prompts through the kit's prompt table (`kit/src/prompts.rs`).

pub mod pipeline;
pub mod student;
pub mod teacher;
pub mod text;

pub use pipeline::SdPipeline;
pub use student::{SdBackbone, SdStudent, SdStudentConfig};
pub use teacher::{SdTeacher, SdTeacherConfig};
pub use text::TextEncoder;

boot_sdk::declare_plugin!("sd");
