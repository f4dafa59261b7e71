//! deepfloyd-if plugin: DeepFloyd IF stage I (a diffusers `IFPipeline` folder: IF-I-M/L/XL) as a pixel-space
//! text-to-image boot teacher distilled from prompts alone (`kind = "if"`), and a BOOT student initialised from
//! it (`kind = "if-student"`).
//!
//! The folder loads as `IFPipeline.save_pretrained` writes it ([`pipeline`]); the networks are the model
//! library's `UNet2DConditionModel` (IF layout: text addition embedding, `encoder_hid_proj`, SimpleCrossAttn
//! blocks) and `T5EncoderModel` + `T5Tokenizer` (parity in `models/tests/`); time, prediction target and the
//! learned-variance split go through the kit's discrete-time denoiser, the prompts through the kit's prompt
//! table. Stage II (the super-resolution UNet with noise augmentation) is not here yet.

pub mod pipeline;
pub mod student;
pub mod teacher;
pub mod text;

pub use pipeline::IfPipeline;
pub use student::{IfStudent, IfStudentConfig};
pub use teacher::{IfTeacher, IfTeacherConfig};
pub use text::T5TextEncoder;

boot_sdk::declare_plugin!("deepfloyd-if");
