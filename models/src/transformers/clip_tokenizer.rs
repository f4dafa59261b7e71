//! transformers' `CLIPTokenizer` (5.x, `models/clip/tokenization_clip.py`), the tokenizer of Stable Diffusion
//! 1.x / 2.x, on the `tokenizers` crate: what `StableDiffusionPipeline` computes with `tokenizer(prompt,
//! padding="max_length", max_length=77, truncation=True).input_ids`.
//!
//! The pipeline is transformers': NFC, whitespace runs to one space, lowercase; split on CLIP's pattern, then
//! byte-level symbols; BPE with the `</w>` end-of-word suffix; `<|startoftext|>` .. `<|endoftext|>` around the
//! tokens (cut so that the three fit in 77), then the pad id up to 77.
//!
//! A diffusers `tokenizer/` folder holds `vocab.json` + `merges.txt` (the hub's SD folders) or `tokenizer.json`
//! (what transformers 5 saves). As transformers 5 does, only the BPE vocabulary and merges are taken from a
//! `tokenizer.json`; the rest of the pipeline is always the one above.
//!
//! The special tokens come from `tokenizer_config.json`, overridden by `special_tokens_map.json` (unless the
//! config has an `added_tokens_decoder`, which then gives the tokens' flags; without one, `tokenizer.json`'s
//! `added_tokens` do). They are matched in the prompt before tokenizing, as in transformers, which has two
//! visible effects on real folders:
//!
//! - SD 2.x pads with `"!"` (id 0): a special token too, so every `!` in an SD 2.x prompt is id 0, not the
//!   BPE of the text around it (`"hello!"` -> 3306 0, SD 1.x: 3306 256);
//! - a special token whose flag `normalized` is true (the `AddedToken` objects of the legacy SD configs) is also
//!   found after lowercasing: `"<|ENDOFTEXT|>"` is the end token for SD 2.x's folder.

use std::path::Path;

use boot_sdk::InputError;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, PaddingDirection, PaddingParams, PaddingStrategy, SplitDelimiterBehavior, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use crate::serde_json::{Map, Value};

/// CLIP's pre-tokenizer pattern (transformers 5 keeps the two special tokens whole in it).
const CLIP_PATTERN: &str = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";
/// The text encoder's context length, when the folder does not state `model_max_length`.
const DEFAULT_MAX_LENGTH: usize = 77;
/// The named special tokens in the order transformers registers them (for one text, the last flags win).
const ROLES: [(&str, &str); 4] =
    [("bos_token", "<|startoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>"), ("pad_token", "<|endoftext|>")];

/// Stable Diffusion's CLIP tokenizer: prompts to `max_length` token ids.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    tokenizer: Tokenizer,
    pad_id: u32,
    max_length: usize,
}

impl ClipTokenizer {
    /// Reads a diffusers `tokenizer/` folder: `tokenizer.json` when present, else `vocab.json` + `merges.txt`;
    /// `tokenizer_config.json` and `special_tokens_map.json` when present (the special tokens, with the pad,
    /// and `model_max_length`; defaults: pad `<|endoftext|>`, 77). A missing or malformed file is an
    /// [`InputError`] naming it.
    pub fn from_folder(dir: &Path) -> crate::Result<Self> {
        let json = dir.join("tokenizer.json");
        let (vocab, merges, added, source) = if json.is_file() {
            let (vocab, merges, added) = read_tokenizer_json(&json)?;
            (vocab, merges, added, json.display().to_string())
        } else {
            let vocab_path = dir.join("vocab.json");
            (read_vocab(&vocab_path)?, read_merges(&dir.join("merges.txt"))?, Vec::new(), vocab_path.display().to_string())
        };
        let specials = read_specials(dir, &added)?;
        Self::new(vocab, merges, &specials, &source)
    }

    /// Builds the tokenizer from a BPE vocabulary and merges (read from `source`) and the folder's specials.
    fn new(vocab: Vocab, merges: Merges, specials: &Specials, source: &str) -> crate::Result<Self> {
        let tokens = &specials.tokens;
        let [bos, eos, unk, pad] = [0, 1, 2, 3].map(|i| tokens[i].0.content.clone());
        let id = |token: &str, i: usize| {
            vocab.get(token).copied().ok_or_else(|| InputError::new(&tokens[i].1, ROLES[i].0, format!("{token:?} is not in the vocabulary of {source}")))
        };
        let (bos_id, eos_id, pad_id) = (id(&bos, 0)?, id(&eos, 1)?, id(&pad, 3)?);
        id(&unk, 2)?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token(unk)
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix("</w>".into())
            .fuse_unk(false)
            .build()
            .map_err(|e| InputError::new(source, "", format!("not a BPE vocabulary: {e}")))?;
        let normalizer = NormalizerSequence::new(vec![NFC.into(), Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(tk)?.into(), Lowercase.into()]);
        let split = Split::new(SplitPattern::Regex(CLIP_PATTERN.into()), SplitDelimiterBehavior::Removed, true).map_err(tk)?;
        let pre_tokenizer = PreTokenizerSequence::new(vec![split.into(), ByteLevel::new(false, true, true).into()]);
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_normalizer(Some(normalizer)).map_err(tk)?.with_pre_tokenizer(Some(pre_tokenizer));
        // After the normalizer: a `normalized` special token is stored in its normalized form.
        tokenizer.add_special_tokens(tokens.iter().map(|(s, _)| s.added_token())).map_err(tk)?;
        tokenizer.with_post_processor(Some(RobertaProcessing::new((eos, eos_id), (bos, bos_id)).trim_offsets(false).add_prefix_space(false)));
        let max_length = specials.max_length;
        let truncation = TruncationParams { max_length, strategy: TruncationStrategy::LongestFirst, stride: 0, direction: TruncationDirection::Right };
        tokenizer.with_truncation(Some(truncation)).map_err(|e| InputError::new(&specials.max_length_source, "model_max_length", e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(max_length),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: pad,
        }));
        Ok(Self { tokenizer, pad_id, max_length })
    }

    /// The ids of `prompt`: start token, the prompt's tokens (cut to fit), end token, pad ids; `max_length` in all.
    pub fn encode(&self, prompt: &str) -> crate::Result<Vec<u32>> {
        let encoding = self.tokenizer.encode(prompt, true).map_err(|e| anyhow::anyhow!("tokenizing {prompt:?}: {e}"))?;
        let ids = encoding.get_ids().to_vec();
        anyhow::ensure!(ids.len() == self.max_length, "tokenizing {prompt:?}: {} ids, expected {}", ids.len(), self.max_length);
        Ok(ids)
    }

    /// [`encode`](Self::encode) for each prompt.
    pub fn encode_batch(&self, prompts: &[&str]) -> crate::Result<Vec<Vec<u32>>> {
        prompts.iter().map(|p| self.encode(p)).collect()
    }

    /// The id the ids are padded with (SD 1.x: `<|endoftext|>` 49407; SD 2.x: `!` 0).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Ids per prompt (`model_max_length`, 77).
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

/// An error of the `tokenizers` crate as an `anyhow` error (its errors are boxed trait objects).
fn tk(e: tokenizers::Error) -> anyhow::Error {
    anyhow::anyhow!("tokenizers: {e}")
}

/// A special token as a folder states it: a string, or an `AddedToken` object with flags.
#[derive(Debug, Clone)]
struct Special {
    content: String,
    lstrip: bool,
    rstrip: bool,
    single_word: bool,
    normalized: bool,
}

impl Special {
    fn plain(content: &str) -> Self {
        Self { content: content.into(), lstrip: false, rstrip: false, single_word: false, normalized: false }
    }

    /// Reads a string or an `AddedToken` object (missing flags are false); `None` for `null`.
    fn parse(value: &Value, source: &str, key: &str) -> crate::Result<Option<Self>> {
        let flag = |m: &Map<String, Value>, name: &str| match m.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(InputError::new(source, format!("{key}.{name}"), format!("expected true or false, found {v}"))),
        };
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(Self::plain(s)),
            Value::Object(m) => match m.get("content") {
                Some(Value::String(s)) => Some(Self {
                    content: s.clone(),
                    lstrip: flag(m, "lstrip")?,
                    rstrip: flag(m, "rstrip")?,
                    single_word: flag(m, "single_word")?,
                    normalized: flag(m, "normalized")?,
                }),
                _ => return Err(InputError::new(source, format!("{key}.content"), "expected the token's text").into()),
            },
            v => return Err(InputError::new(source, key, format!("expected a token (a string or an AddedToken object), found {v}")).into()),
        })
    }

    fn added_token(&self) -> AddedToken {
        AddedToken::from(self.content.clone(), true).lstrip(self.lstrip).rstrip(self.rstrip).single_word(self.single_word).normalized(self.normalized)
    }
}

/// The folder's named special tokens (in [`ROLES`] order, each with the file it came from) and length.
struct Specials {
    tokens: Vec<(Special, String)>,
    max_length: usize,
    max_length_source: String,
}

/// Reads the special tokens and `model_max_length` as transformers 5's `from_pretrained` resolves them;
/// `added` are `tokenizer.json`'s `added_tokens`.
fn read_specials(dir: &Path, added: &[Special]) -> crate::Result<Specials> {
    let config_path = dir.join("tokenizer_config.json");
    let config_source = config_path.display().to_string();
    let config = read_object_if_present(&config_path)?.unwrap_or_default();
    let map_path = dir.join("special_tokens_map.json");
    let map_source = map_path.display().to_string();
    // transformers reads special_tokens_map.json only for a config without `added_tokens_decoder`.
    let (map, flags) = match config.get("added_tokens_decoder") {
        Some(Value::Object(decoder)) => {
            let mut flags = Vec::new();
            for (id, v) in decoder {
                flags.extend(Special::parse(v, &config_source, &format!("added_tokens_decoder.{id}"))?);
            }
            (Map::new(), flags)
        }
        Some(v) => return Err(InputError::new(&config_source, "added_tokens_decoder", format!("expected an object of id -> token, found {v}")).into()),
        None => (read_object_if_present(&map_path)?.unwrap_or_default(), added.to_vec()),
    };
    let mut tokens = Vec::new();
    for (role, default) in ROLES {
        let found = match map.get(role) {
            Some(v) => Special::parse(v, &map_source, role)?.map(|s| (s, map_source.clone())),
            None => None,
        };
        let found = match found {
            Some(f) => Some(f),
            None => config.get(role).map(|v| Special::parse(v, &config_source, role)).transpose()?.flatten().map(|s| (s, config_source.clone())),
        };
        let (special, source) = found.unwrap_or_else(|| (Special::plain(default), String::new()));
        // A token the added tokens list again takes its flags from there.
        let special = flags.iter().rev().find(|f| f.content == special.content).cloned().unwrap_or(special);
        tokens.push((special, if source.is_empty() { dir.display().to_string() } else { source }));
    }
    let max_length = match config.get("model_max_length") {
        None | Some(Value::Null) => DEFAULT_MAX_LENGTH,
        Some(v) => match v.as_u64() {
            Some(n) if (3..=1 << 20).contains(&n) => n as usize,
            _ => return Err(InputError::new(&config_source, "model_max_length", format!("expected the text encoder's context length (77), found {v}")).into()),
        },
    };
    Ok(Specials { tokens, max_length, max_length_source: config_source })
}

/// Reads `path` as a JSON object, `None` when the file does not exist.
fn read_object_if_present(path: &Path) -> crate::Result<Option<Map<String, Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&source, "", format!("cannot read file: {e}")))?;
    match crate::config::parse_value(&text, &source)? {
        Value::Object(m) => Ok(Some(m)),
        v => Err(InputError::new(&source, "", format!("expected a JSON object, found {}", kind(&v))).into()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_text(path: &Path, hint: &str) -> crate::Result<String> {
    std::fs::read_to_string(path).map_err(|e| InputError::new(path.display().to_string(), "", format!("cannot read file: {e}{hint}")).into())
}

/// A vocabulary object (`token -> id`) read from `source` (`key` is where it sits in the file).
fn vocab_from_value(value: &Value, source: &str, key: &str) -> crate::Result<Vocab> {
    let Value::Object(m) = value else {
        return Err(InputError::new(source, key, format!("expected an object of token -> id, found {}", kind(value))).into());
    };
    let mut vocab = Vocab::default();
    for (token, id) in m {
        let id = id.as_u64().filter(|&i| i <= u32::MAX as u64).ok_or_else(|| {
            let at = if key.is_empty() { token.clone() } else { format!("{key}.{token}") };
            InputError::new(source, at, format!("expected a token id, found {id}"))
        })?;
        vocab.insert(token.clone(), id as u32);
    }
    Ok(vocab)
}

/// `vocab.json`: the BPE vocabulary.
fn read_vocab(path: &Path) -> crate::Result<Vocab> {
    let source = path.display().to_string();
    let text = read_text(path, " (a tokenizer folder holds tokenizer.json, or vocab.json and merges.txt)")?;
    vocab_from_value(&crate::config::parse_value(&text, &source)?, &source, "")
}

/// `merges.txt`: one merge per line, two symbols separated by one space; `#version` lines are skipped.
fn read_merges(path: &Path) -> crate::Result<Merges> {
    let source = path.display().to_string();
    let text = read_text(path, "")?;
    let mut merges = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("#version") {
            continue;
        }
        match line.split(' ').collect::<Vec<_>>()[..] {
            [a, b] => merges.push((a.to_string(), b.to_string())),
            _ => return Err(InputError::new(&source, format!("line {}", i + 1), format!("expected two symbols separated by one space, found {line:?}")).into()),
        }
    }
    Ok(merges)
}

/// `tokenizer.json`: the BPE model's vocabulary and merges (`"a b"` strings or `["a", "b"]` pairs) and the
/// `added_tokens`.
fn read_tokenizer_json(path: &Path) -> crate::Result<(Vocab, Merges, Vec<Special>)> {
    let source = path.display().to_string();
    let value = crate::config::parse_value(&read_text(path, "")?, &source)?;
    let model = value.get("model").ok_or_else(|| InputError::new(&source, "model", "missing"))?;
    match model.get("type") {
        None => {}
        Some(Value::String(t)) if t == "BPE" => {}
        Some(t) => return Err(InputError::new(&source, "model.type", format!("expected \"BPE\" (CLIP's model), found {t}")).into()),
    }
    let vocab = vocab_from_value(model.get("vocab").unwrap_or(&Value::Null), &source, "model.vocab")?;
    let Some(Value::Array(list)) = model.get("merges") else {
        return Err(InputError::new(&source, "model.merges", "expected an array of merges").into());
    };
    let mut merges = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let pair = match m {
            Value::String(s) => s.split_once(' ').filter(|(_, b)| !b.contains(' ')).map(|(a, b)| (a.to_string(), b.to_string())),
            Value::Array(p) => match &p[..] {
                [Value::String(a), Value::String(b)] => Some((a.clone(), b.clone())),
                _ => None,
            },
            _ => None,
        };
        merges.push(pair.ok_or_else(|| InputError::new(&source, format!("model.merges[{i}]"), format!("expected \"a b\" or [\"a\", \"b\"], found {m}")))?);
    }
    let mut added = Vec::new();
    if let Some(Value::Array(tokens)) = value.get("added_tokens") {
        for (i, t) in tokens.iter().enumerate() {
            added.extend(Special::parse(t, &source, &format!("added_tokens[{i}]"))?);
        }
    }
    Ok((vocab, merges, added))
}
