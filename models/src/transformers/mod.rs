//! huggingface/transformers models that diffusion pipelines use as conditioning encoders, and their tokenizers.

pub mod clip_text;
pub mod clip_tokenizer;

pub use clip_text::{ClipTextConfig, ClipTextModel};
pub use clip_tokenizer::ClipTokenizer;
