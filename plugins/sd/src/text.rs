//! The text side of a Stable Diffusion folder: `tokenizer/` and `text_encoder/`, turning prompts into the
//! UNet's `encoder_hidden_states` exactly as `StableDiffusionPipeline.encode_prompt` does (pad / truncate to
//! the tokenizer's 77 tokens, `last_hidden_state` after `final_layer_norm`). The encoder is loaded for each
//! call and dropped after it, so a run keeps only the embeddings (`kit/src/prompts.rs`).

use std::path::PathBuf;

use boot_models::transformers::{ClipTextConfig, ClipTextModel, ClipTokenizer};
use boot_kit::PromptEncoder;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::cond::TextCond;

/// Prompts per text-encoder call.
const ENCODE_BATCH: usize = 64;

/// The tokenizer (kept) and where the text encoder's weights are (read when encoding).
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: ClipTokenizer,
    config: ClipTextConfig,
    dir: PathBuf,
    variant: Option<String>,
    dtype: DType,
    device: Device,
}

impl TextEncoder {
    /// Reads `tokenizer/`; checks that the text encoder's weight file exists (it is read by [`Self::encode`]).
    pub fn new(tokenizer_dir: &std::path::Path, encoder_dir: PathBuf, config: ClipTextConfig, variant: Option<String>, dtype: DType, device: Device) -> boot_sdk::Result<Self> {
        let tokenizer = ClipTokenizer::from_folder(tokenizer_dir)?;
        let file = boot_kit::weights::weights_file(&encoder_dir, "model", variant.as_deref());
        if !file.exists() {
            return Err(boot_sdk::InputError::new(file.display().to_string(), "", "missing (neither the weights file nor a shard index)").into());
        }
        if tokenizer.max_length() > config.max_position_embeddings {
            let msg = format!("model_max_length {} exceeds the text encoder's max_position_embeddings {}", tokenizer.max_length(), config.max_position_embeddings);
            return Err(boot_sdk::InputError::new(tokenizer_dir.display().to_string(), "model_max_length", msg).into());
        }
        Ok(Self { tokenizer, config, dir: encoder_dir, variant, dtype, device })
    }

    /// Tokens per prompt (77 for Stable Diffusion).
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// Width of the embeddings.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The padded token ids of each prompt.
    pub fn token_ids(&self, prompts: &[String]) -> boot_sdk::Result<Vec<Vec<u32>>> {
        prompts.iter().map(|p| self.tokenizer.encode(p)).collect()
    }

    /// `[P, 77, hidden_size]` embeddings of `prompts` in the run's dtype on its device (the encoder is loaded
    /// for this call only).
    pub fn embeddings(&self, prompts: &[String]) -> boot_sdk::Result<Tensor> {
        let tensors = boot_kit::weights::load_component(&self.dir, "model", self.variant.as_deref(), |_| true, self.dtype, &self.device)?;
        let tensors = ClipTextModel::canonical_tensors(tensors);
        let file = boot_kit::weights::weights_file(&self.dir, "model", self.variant.as_deref()).display().to_string();
        let model = boot_models::load_strict(&file, tensors, self.dtype, &self.device, |vb| Ok(ClipTextModel::new(vb, &self.config)?))?;
        let ids = self.token_ids(prompts)?;
        let l = self.max_length();
        let mut out = Vec::with_capacity(prompts.len().div_ceil(ENCODE_BATCH));
        for chunk in ids.chunks(ENCODE_BATCH) {
            let flat: Vec<u32> = chunk.iter().flatten().copied().collect();
            let t = Tensor::from_vec(flat, (chunk.len(), l), &self.device)?;
            out.push(model.forward(&t)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }
}

impl PromptEncoder for TextEncoder {
    fn encode(&self, prompts: &[String]) -> boot_sdk::Result<TextCond> {
        Ok(TextCond { embeddings: self.embeddings(prompts)?, mask: None })
    }
}
