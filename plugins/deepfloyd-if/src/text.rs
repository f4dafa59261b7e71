//! The text side of an IF folder: `tokenizer/` and `text_encoder/`, turning prompts into the UNet's
//! `encoder_hidden_states` exactly as `IFPipeline.encode_prompt` does: each prompt lowercased and stripped
//! (`_text_preprocessing` with `clean_caption=False`: Python's `str.lower().strip()`, here Rust's Unicode
//! `to_lowercase` and `trim`), padded / truncated to 77 T5 tokens, and `last_hidden_state` of
//! `T5EncoderModel(input_ids, attention_mask=mask)`. The attention mask goes to T5 only: `IFPipeline` passes
//! none to the UNet, so the embeddings of padding positions are kept and the condition carries no mask (the
//! UNet's text addition embedding and cross-attention see all 77 positions, as in the pipeline). The encoder is
//! loaded for each call and dropped after it, so a run keeps only the embeddings (`kit/src/prompts.rs`).

use std::path::{Path, PathBuf};

use boot_kit::PromptEncoder;
use boot_models::transformers::{T5Config, T5EncoderModel, T5Tokenizer};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::cond::TextCond;
use boot_sdk::InputError;

/// Prompts per text-encoder call.
const ENCODE_BATCH: usize = 64;

/// `IFPipeline._text_preprocessing(text, clean_caption=False)`: lowercased and stripped.
pub fn preprocess(prompt: &str) -> String {
    prompt.to_lowercase().trim().to_string()
}

/// The tokenizer (kept) and where the text encoder's weights are (read when encoding).
#[derive(Debug, Clone)]
pub struct T5TextEncoder {
    tokenizer: T5Tokenizer,
    config: T5Config,
    dir: PathBuf,
    variant: Option<String>,
    dtype: DType,
    device: Device,
}

impl T5TextEncoder {
    /// Reads `tokenizer/`; refuses `f16` (T5 overflows it; `run.dtype`); checks that the text encoder's weight
    /// file exists (it is read by [`Self::embeddings`]).
    pub fn new(tokenizer_dir: &Path, encoder_dir: PathBuf, config: T5Config, variant: Option<String>, dtype: DType, device: Device) -> boot_sdk::Result<Self> {
        T5EncoderModel::check_dtype(dtype).map_err(|e| InputError::config("run.dtype", format!("{e} (the IF teacher's text encoder runs in the run's dtype)")))?;
        let tokenizer = T5Tokenizer::from_folder(tokenizer_dir)?;
        let file = boot_kit::weights::weights_file(&encoder_dir, "model", variant.as_deref());
        if !file.exists() {
            return Err(InputError::new(file.display().to_string(), "", "missing (neither the weights file nor a shard index)").into());
        }
        Ok(Self { tokenizer, config, dir: encoder_dir, variant, dtype, device })
    }

    /// Tokens per prompt (77).
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// Width of the embeddings (T5's `d_model`: 4096 for T5 v1.1 XXL).
    pub fn hidden_size(&self) -> usize {
        self.config.d_model
    }

    /// `[P, 77, d_model]` embeddings and `[P, 77]` attention masks (`u32`) of `prompts` (preprocessed here), in
    /// the run's dtype on its device (the encoder is loaded for this call only).
    pub fn embeddings(&self, prompts: &[String]) -> boot_sdk::Result<(Tensor, Tensor)> {
        let tensors = boot_kit::weights::load_component(&self.dir, "model", self.variant.as_deref(), |_| true, self.dtype, &self.device)?;
        let tensors = T5EncoderModel::canonical_tensors(tensors);
        let file = boot_kit::weights::weights_file(&self.dir, "model", self.variant.as_deref()).display().to_string();
        let model = boot_models::load_strict(&file, tensors, self.dtype, &self.device, |vb| Ok(T5EncoderModel::new(vb, &self.config)?))?;
        let l = self.max_length();
        let encodings = prompts.iter().map(|p| self.tokenizer.encode(&preprocess(p))).collect::<boot_sdk::Result<Vec<_>>>()?;
        let (mut out, mut masks) = (Vec::new(), Vec::new());
        for chunk in encodings.chunks(ENCODE_BATCH) {
            let ids: Vec<u32> = chunk.iter().flat_map(|e| e.ids.iter().copied()).collect();
            let mask: Vec<u32> = chunk.iter().flat_map(|e| e.attention_mask.iter().copied()).collect();
            let ids = Tensor::from_vec(ids, (chunk.len(), l), &self.device)?;
            let mask = Tensor::from_vec(mask, (chunk.len(), l), &self.device)?;
            out.push(model.forward(&ids, Some(&mask))?);
            masks.push(mask);
        }
        Ok((Tensor::cat(&out, 0)?, Tensor::cat(&masks, 0)?))
    }
}

impl PromptEncoder for T5TextEncoder {
    fn encode(&self, prompts: &[String]) -> boot_sdk::Result<TextCond> {
        // The mask stays with T5: IFPipeline gives the UNet none.
        Ok(TextCond { embeddings: self.embeddings(prompts)?.0, mask: None })
    }
}
