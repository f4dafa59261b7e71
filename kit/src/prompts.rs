//! `teacher.prompts`: the context dataset of a text-conditional teacher (Algorithm 1's `D`), one prompt per
//! sample drawn from the sample's seed, and the table of their text embeddings, computed once and kept on the
//! device so training never runs the text encoder.
//!
//! A `.txt` file holds one prompt per line (blank lines are skipped; a line is used as written, without its
//! line break); a `.jsonl` file one JSON object per line with a string field `prompt` (other fields are
//! ignored, so DiffusionDB-style exports load as they are). `examples/prompts/compositional.txt`
//! (`scripts/prompts/make_prompts.py`) is the file boot ships.

use std::path::{Path, PathBuf};

use boot_sdk::candle::{Tensor, D};
use boot_sdk::rand::Rng;
use boot_sdk::cond::TextCond;
use boot_sdk::serde_json;
use boot_sdk::{Cond, InputError};

/// The prompts of a prompts file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    /// The file they came from.
    pub path: PathBuf,
    /// The prompts.
    pub lines: Vec<String>,
}

impl Prompts {
    /// Reads `path` (`.txt` or `.jsonl`); errors name the file and, for a bad line, its number.
    pub fn read(path: &Path) -> boot_sdk::Result<Self> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&shown, "", format!("cannot read the prompts file: {e}")))?;
        let jsonl = path.extension().is_some_and(|e| e == "jsonl");
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if !jsonl {
                lines.push(line.to_string());
                continue;
            }
            let bad = |m: String| InputError::new(&shown, format!("line {}", i + 1), m);
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
            match value.get("prompt").and_then(|p| p.as_str()) {
                Some(p) => lines.push(p.to_string()),
                None => return Err(bad("no string field \"prompt\"".into()).into()),
            }
        }
        if lines.is_empty() {
            return Err(InputError::new(&shown, "", "holds no prompts").into());
        }
        Ok(Self { path: path.to_path_buf(), lines })
    }

    /// The prompts file `teacher.prompts` (`path`, relative to the config's folder `base_dir`); a missing file
    /// names the key.
    pub fn from_config(base_dir: &Path, path: &Path) -> boot_sdk::Result<Self> {
        let full = base_dir.join(path);
        if !full.is_file() {
            return Err(InputError::config("teacher.prompts", format!("{} is not a file", full.display())).into());
        }
        Self::read(&full)
    }

    /// The prompt index of each sample seed (uniform over the file, so a sample's prompt does not depend on
    /// the batch it is in).
    pub fn draw(&self, seeds: &[u64]) -> Vec<usize> {
        seeds.iter().map(|&s| boot_sdk::rng::rng_for(s).random_range(0..self.lines.len())).collect()
    }
}

/// Text embeddings of a prompt list (`[P, L, D]`) and of the empty prompt (`[1, L, D]`, the CFG null
/// condition), with attention masks where the teacher uses them.
#[derive(Debug, Clone)]
pub struct PromptEmbeddings {
    embeddings: Tensor,
    mask: Option<Tensor>,
    null: TextCond,
}

impl PromptEmbeddings {
    /// The table: `embeddings` `[P, L, D]` with `mask` `[P, L]` (or none), and the empty prompt's.
    pub fn new(embeddings: Tensor, mask: Option<Tensor>, null: TextCond) -> boot_sdk::Result<Self> {
        let (_, l, d) = embeddings.dims3()?;
        if null.embeddings.dims() != [1, l, d] {
            anyhow::bail!("prompt embeddings: the null prompt's are {:?}, the prompts' [P, {l}, {d}]", null.embeddings.dims());
        }
        Ok(Self { embeddings, mask, null })
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.embeddings.dim(0).unwrap_or(0)
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(length, dim)` of one prompt's embeddings.
    pub fn shape(&self) -> (usize, usize) {
        let d = self.embeddings.dims();
        (d[1], d[2])
    }

    /// The conditioning of a batch whose samples have the given prompt indices.
    pub fn cond(&self, indices: &[usize]) -> boot_sdk::Result<Cond> {
        let ids = Tensor::from_vec(indices.iter().map(|&i| i as u32).collect::<Vec<_>>(), indices.len(), self.embeddings.device())?;
        let embeddings = self.embeddings.index_select(&ids, 0)?;
        let mask = self.mask.as_ref().map(|m| m.index_select(&ids, 0)).transpose()?;
        Ok(Cond { text: Some(TextCond { embeddings, mask }), ..Cond::default() })
    }

    /// `cond` with its text replaced by the empty prompt's, batch for batch (the negative condition of
    /// classifier-free guidance).
    pub fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        let n = match &cond.text {
            Some(t) => t.embeddings.dim(0)?,
            None => anyhow::bail!("null condition of a batch without text"),
        };
        let (l, d) = self.shape();
        let embeddings = self.null.embeddings.broadcast_as((n, l, d))?.contiguous()?;
        let mask = self.null.mask.as_ref().map(|m| m.broadcast_as((n, m.dim(D::Minus1)?))?.contiguous()).transpose()?;
        Ok(Cond { text: Some(TextCond { embeddings, mask }), ..cond.clone() })
    }
}

/// A text encoder as a text-conditional teacher uses it: the conditioning of a list of prompts, one row per
/// prompt (embeddings, and a mask where the teacher uses one).
pub trait PromptEncoder: Send + Sync {
    /// `TextCond` of `prompts` (`[P, L, D]`).
    fn encode(&self, prompts: &[String]) -> boot_sdk::Result<TextCond>;
}

/// The context dataset of a text-conditional teacher: a prompts file, drawn per sample seed, whose
/// embeddings (and the empty prompt's, the CFG null condition) are encoded at the first draw and kept;
/// prompts given later ([`PromptDataset::prompt_cond`], `boot-host sample --prompt`) are encoded on demand.
pub struct PromptDataset {
    prompts: Prompts,
    encoder: Box<dyn PromptEncoder>,
    table: std::sync::Mutex<Option<std::sync::Arc<PromptEmbeddings>>>,
}

impl std::fmt::Debug for PromptDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptDataset").field("file", &self.prompts.path).field("prompts", &self.prompts.lines.len()).finish()
    }
}

impl PromptDataset {
    /// The prompts of `prompts`, encoded by `encoder` when first needed.
    pub fn new(prompts: Prompts, encoder: Box<dyn PromptEncoder>) -> Self {
        Self { prompts, encoder, table: std::sync::Mutex::new(None) }
    }

    /// The prompts.
    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    /// The prompts' embeddings and the empty prompt's, encoded at the first call.
    pub fn table(&self) -> boot_sdk::Result<std::sync::Arc<PromptEmbeddings>> {
        let mut slot = self.table.lock().map_err(|_| anyhow::anyhow!("prompt table lock poisoned"))?;
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let mut all = self.prompts.lines.clone();
        all.push(String::new());
        let text = self.encoder.encode(&all)?;
        let p = self.prompts.lines.len();
        let rows = |t: &Tensor, start, len| -> boot_sdk::Result<Tensor> { Ok(t.narrow(0, start, len)?.contiguous()?) };
        let null = TextCond { embeddings: rows(&text.embeddings, p, 1)?, mask: text.mask.as_ref().map(|m| rows(m, p, 1)).transpose()? };
        let mask = text.mask.as_ref().map(|m| rows(m, 0, p)).transpose()?;
        let table = std::sync::Arc::new(PromptEmbeddings::new(rows(&text.embeddings, 0, p)?, mask, null)?);
        boot_sdk::tracing::info!(prompts = p, file = %self.prompts.path.display(), "prompt embeddings computed");
        *slot = Some(table.clone());
        Ok(table)
    }

    /// The conditioning of the samples with the given seeds (each draws its prompt).
    pub fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        self.table()?.cond(&self.prompts.draw(seeds))
    }

    /// `cond` with the empty prompt's text.
    pub fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        self.table()?.null_cond(cond)
    }

    /// The conditioning of one sample per given prompt.
    pub fn prompt_cond(&self, prompts: &[String]) -> boot_sdk::Result<Cond> {
        Ok(Cond { text: Some(self.encoder.encode(prompts)?), ..Cond::default() })
    }
}

/// The text embeddings of a batch of `n` (`kind` names the teacher in errors).
pub fn text_states<'a>(cond: &'a Cond, n: usize, kind: &str) -> boot_sdk::Result<&'a Tensor> {
    match &cond.text {
        Some(t) if t.embeddings.dim(0)? == n => Ok(&t.embeddings),
        Some(t) => anyhow::bail!("{kind}: {} text embeddings for a batch of {n}", t.embeddings.dim(0)?),
        None => anyhow::bail!("{kind}: the batch has no text conditioning"),
    }
}
