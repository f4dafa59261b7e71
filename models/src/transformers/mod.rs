//! huggingface/transformers models that diffusion pipelines use as conditioning encoders.

pub mod clip_text;

pub use clip_text::{ClipTextConfig, ClipTextModel};
