//! huggingface/transformers models that diffusion pipelines use as conditioning encoders, and their tokenizers.

pub mod clip_text;
pub mod clip_tokenizer;
pub mod t5_encoder;
pub mod t5_tokenizer;

pub use clip_text::{ClipTextConfig, ClipTextModel};
pub use clip_tokenizer::ClipTokenizer;
pub use t5_encoder::{T5Config, T5EncoderModel};
pub use t5_tokenizer::{T5Encoding, T5Tokenizer, T5_MAX_LENGTH};
