//! transformers' `T5Tokenizer` (5.x, `models/t5/tokenization_t5.py`), the tokenizer of DeepFloyd IF, on the
//! `tokenizers` crate: what `IFPipeline` computes with `tokenizer(prompt, padding="max_length", max_length=77,
//! truncation=True, add_special_tokens=True)`, the `input_ids` and the `attention_mask`.
//!
//! The pipeline is transformers 5's, whichever file the folder holds: SentencePiece's precompiled normalizer
//! (NFKC-like rewrites of the `nmt_nfkc` charsmap); split on whitespace, then `▁` for each space and in front of
//! each word (`Metaspace`, prepend scheme "always"); a Unigram model over the pieces and their scores (`<unk>`
//! for what no piece covers, runs of unknown characters fused); `</s>` (id 1) appended, the tokens cut so that
//! it fits in 77; `<pad>` (id 0) up to 77, with attention mask 0. `<pad>`, `</s>`, `<unk>` and the 100
//! sentinels `<extra_id_0>` .. `<extra_id_99>` are special tokens: written in a prompt, they are that token.
//!
//! `IFPipeline` lowercases and strips the prompt before tokenizing (or, with `bs4` and `ftfy` installed and
//! `clean_caption=True`, its `_clean_caption`); that text preparation is the caller's.
//!
//! A tokenizer folder holds one of two files:
//!
//! - `tokenizer.json` (HF `tokenizers`, a `Unigram` model): as transformers 5 does, only the vocabulary with
//!   its scores (`model.vocab`) and the `Precompiled` normalizer's charsmap are taken from it; the rest of the
//!   pipeline is always the one above.
//! - `spiece.model` (what the IF folders on the hub carry): a SentencePiece `ModelProto`, a protocol buffer.
//!   It is read here by a small hand-written protobuf reader (no code generation, no new crate): the message is
//!   a sequence of fields, each a varint key `(number << 3) | wire type` followed by a varint (type 0), 8 bytes
//!   (type 1), a varint length and that many bytes (type 2: strings, bytes, sub-messages) or 4 bytes (type 5).
//!   Read are `ModelProto.pieces` (field 1, repeated `SentencePiece`: `piece` string field 1, `score` float
//!   field 2, `type` enum field 3: CONTROL pieces become special tokens, USER_DEFINED ones added tokens), `ModelProto.trainer_spec.model_type` (field 2, its field 3: must be
//!   UNIGRAM, 1, the default) and `ModelProto.normalizer_spec.precompiled_charsmap` (field 3, its bytes field
//!   2); every other field is skipped. As transformers' T5 converter, the 100 `<extra_id_*>` are appended to
//!   the pieces (`<extra_id_99>` first: ids 32000 .. 32099 for T5's 32000 pieces) and the normalizer spec's
//!   flags (`add_dummy_prefix`, `remove_extra_whitespaces`) are not read: the pre-tokenizer above does both.

use std::path::Path;

use boot_sdk::InputError;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::serde_json::Value;

/// `IFPipeline`'s `max_length`: ids per prompt.
pub const T5_MAX_LENGTH: usize = 77;
/// The sentinels transformers' `T5Tokenizer` adds (`extra_ids`).
const EXTRA_IDS: usize = 100;
const PAD: &str = "<pad>";
const EOS: &str = "</s>";
const UNK: &str = "<unk>";

/// The ids of one prompt and their attention mask (1: a token, 0: padding), `max_length` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T5Encoding {
    /// Token ids: the prompt's, `</s>`, then `<pad>`.
    pub ids: Vec<u32>,
    /// 1 for the prompt's tokens and `</s>`, 0 for padding.
    pub attention_mask: Vec<u32>,
}

/// DeepFloyd IF's T5 tokenizer: prompts to 77 token ids and an attention mask.
#[derive(Debug, Clone)]
pub struct T5Tokenizer {
    tokenizer: Tokenizer,
    max_length: usize,
}

impl T5Tokenizer {
    /// Reads a tokenizer folder: `tokenizer.json` when present (as transformers 5 prefers it), else
    /// `spiece.model`. A missing or malformed file is an [`InputError`] naming it.
    pub fn from_folder(dir: &Path) -> crate::Result<Self> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_tokenizer_json(&json);
        }
        let spm = dir.join("spiece.model");
        if !spm.exists() {
            return Err(InputError::new(dir.display().to_string(), "", "no tokenizer.json or spiece.model in the tokenizer folder").into());
        }
        Self::from_spiece_model(&spm)
    }

    /// Reads an HF `tokenizer.json` with a `Unigram` model (its `model.vocab` and the normalizer's
    /// `precompiled_charsmap`).
    pub fn from_tokenizer_json(path: &Path) -> crate::Result<Self> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&source, "", format!("cannot read file: {e}")))?;
        let value = crate::config::parse_value(&text, &source)?;
        let model = value.get("model").ok_or_else(|| InputError::new(&source, "model", "missing"))?;
        match model.get("type") {
            Some(Value::String(t)) if t == "Unigram" => {}
            t => return Err(InputError::new(&source, "model.type", format!("expected \"Unigram\" (T5's model), found {}", t.unwrap_or(&Value::Null))).into()),
        }
        let Some(Value::Array(list)) = model.get("vocab") else {
            return Err(InputError::new(&source, "model.vocab", "expected an array of [piece, score] pairs").into());
        };
        let mut vocab = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            match entry.as_array().map(Vec::as_slice) {
                Some([Value::String(piece), score]) if score.is_number() => vocab.push((piece.clone(), score.as_f64().unwrap_or(0.0))),
                _ => return Err(InputError::new(&source, format!("model.vocab[{i}]"), format!("expected [piece, score], found {entry}")).into()),
            }
        }
        let precompiled = match value.get("normalizer") {
            None | Some(Value::Null) => None,
            Some(n) => find_precompiled(n, "normalizer", &source)?,
        };
        Self::new(vocab, precompiled, (Vec::new(), Vec::new()), &source)
    }

    /// Reads a SentencePiece `spiece.model` (the module docs describe how).
    pub fn from_spiece_model(path: &Path) -> crate::Result<Self> {
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| InputError::new(&source, "", format!("cannot read file: {e}")))?;
        let spm = read_model_proto(&bytes).map_err(|e| InputError::new(&source, e.key, format!("not a SentencePiece model: {}", e.message)))?;
        if spm.pieces.is_empty() {
            return Err(InputError::new(&source, "pieces", "not a SentencePiece model: no pieces").into());
        }
        if spm.model_type != 1 {
            return Err(InputError::new(&source, "trainer_spec.model_type", format!("expected UNIGRAM (1, T5's model), found {}", spm.model_type)).into());
        }
        let SpmModel { pieces: mut vocab, control, user_defined, precompiled_charsmap, .. } = spm;
        vocab.extend((0..EXTRA_IDS).rev().map(|i| (format!("<extra_id_{i}>"), 0.0)));
        let precompiled = match precompiled_charsmap {
            Some(map) if !map.is_empty() => Some(
                Precompiled::from(&map)
                    .map_err(|e| InputError::new(&source, "normalizer_spec.precompiled_charsmap", format!("not a precompiled charsmap: {e}")))?,
            ),
            _ => None,
        };
        Self::new(vocab, precompiled, (control, user_defined), &source)
    }

    /// Builds the pipeline of the module docs from the pieces and scores (read from `source`); `added` are a
    /// spiece.model's CONTROL pieces (special tokens) and USER_DEFINED pieces (added tokens), as transformers'
    /// `SentencePieceExtractor` adds them.
    fn new(vocab: Vec<(String, f64)>, precompiled: Option<Precompiled>, added: (Vec<String>, Vec<String>), source: &str) -> crate::Result<Self> {
        let id = |token: &str| {
            vocab.iter().position(|(p, _)| p == token).ok_or_else(|| InputError::new(source, "", format!("{token:?} is not in the vocabulary (a T5 vocabulary has <pad>, </s> and <unk>)")))
        };
        let (pad_id, eos_id, unk_id) = (id(PAD)?, id(EOS)?, id(UNK)?);
        let unigram = Unigram::from(vocab, Some(unk_id), false).map_err(|e| InputError::new(source, "", format!("not a Unigram vocabulary: {e}")))?;
        let mut tokenizer = Tokenizer::new(unigram);
        if let Some(p) = precompiled {
            tokenizer.with_normalizer(Some(p)).map_err(tk)?;
        }
        let pre_tokenizer = PreTokenizerSequence::new(vec![WhitespaceSplit.into(), Metaspace::new('▁', PrependScheme::Always, true).into()]);
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
        let (control, user_defined) = added;
        let specials = [PAD, EOS, UNK].into_iter().map(String::from).chain((0..EXTRA_IDS).map(|i| format!("<extra_id_{i}>"))).chain(control);
        tokenizer.add_special_tokens(specials.map(|s| AddedToken::from(s, true).normalized(false))).map_err(tk)?;
        tokenizer.add_tokens(user_defined.into_iter().map(|s| AddedToken::from(s, false).normalized(false))).map_err(tk)?;
        let post = TemplateProcessing::builder()
            .try_single(format!("$A {EOS}"))
            .map_err(|e| anyhow::anyhow!("tokenizers: {e}"))?
            .try_pair(format!("$A {EOS} $B {EOS}"))
            .map_err(|e| anyhow::anyhow!("tokenizers: {e}"))?
            .special_tokens(vec![(EOS.to_string(), eos_id as u32)])
            .build()
            .map_err(|e| anyhow::anyhow!("tokenizers: {e}"))?;
        tokenizer.with_post_processor(Some(post));
        let max_length = T5_MAX_LENGTH;
        let truncation = TruncationParams { max_length, strategy: TruncationStrategy::LongestFirst, stride: 0, direction: TruncationDirection::Right };
        tokenizer.with_truncation(Some(truncation)).map_err(tk)?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(max_length),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id: pad_id as u32,
            pad_type_id: 0,
            pad_token: PAD.into(),
        }));
        Ok(Self { tokenizer, max_length })
    }

    /// The ids and attention mask of `prompt`: its tokens (cut to fit), `</s>`, `<pad>`; `max_length` each.
    pub fn encode(&self, prompt: &str) -> crate::Result<T5Encoding> {
        let encoding = self.tokenizer.encode(prompt, true).map_err(|e| anyhow::anyhow!("tokenizing {prompt:?}: {e}"))?;
        let (ids, attention_mask) = (encoding.get_ids().to_vec(), encoding.get_attention_mask().to_vec());
        anyhow::ensure!(ids.len() == self.max_length, "tokenizing {prompt:?}: {} ids, expected {}", ids.len(), self.max_length);
        Ok(T5Encoding { ids, attention_mask })
    }

    /// [`encode`](Self::encode) for each prompt.
    pub fn encode_batch(&self, prompts: &[&str]) -> crate::Result<Vec<T5Encoding>> {
        prompts.iter().map(|p| self.encode(p)).collect()
    }

    /// Ids per prompt (77).
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

/// An error of the `tokenizers` crate as an `anyhow` error (its errors are boxed trait objects).
fn tk(e: tokenizers::Error) -> anyhow::Error {
    anyhow::anyhow!("tokenizers: {e}")
}

/// The `Precompiled` normalizer in a `tokenizer.json` normalizer (itself, or inside a `Sequence`) at `key`.
fn find_precompiled(n: &Value, key: &str, source: &str) -> crate::Result<Option<Precompiled>> {
    match n.get("type").and_then(Value::as_str) {
        Some("Precompiled") => {
            let at = format!("{key}.precompiled_charsmap");
            let Some(Value::String(map)) = n.get("precompiled_charsmap") else {
                return Err(InputError::new(source, at, "expected the charsmap as a base64 string").into());
            };
            // The crate's own deserializer decodes the base64 (it borrows the string: parse from text).
            let object = crate::serde_json::json!({"type": "Precompiled", "precompiled_charsmap": map}).to_string();
            let p = crate::serde_json::from_str::<Precompiled>(&object).map_err(|e| InputError::new(source, at, format!("not a precompiled charsmap: {e}")))?;
            Ok(Some(p))
        }
        Some("Sequence") => {
            let Some(Value::Array(list)) = n.get("normalizers") else {
                return Err(InputError::new(source, format!("{key}.normalizers"), "expected an array of normalizers").into());
            };
            for (i, m) in list.iter().enumerate() {
                if let Some(p) = find_precompiled(m, &format!("{key}.normalizers[{i}]"), source)? {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// What [`T5Tokenizer`] reads of a SentencePiece `ModelProto`.
struct SpmModel {
    /// `(piece, score)` in id order.
    pieces: Vec<(String, f64)>,
    /// The pieces of type CONTROL (3: T5's `<pad>`, `</s>`).
    control: Vec<String>,
    /// The pieces of type USER_DEFINED (4; T5 has none).
    user_defined: Vec<String>,
    /// `trainer_spec.model_type` (1: UNIGRAM, the proto's default).
    model_type: u64,
    /// `normalizer_spec.precompiled_charsmap`, when present.
    precompiled_charsmap: Option<Vec<u8>>,
}

/// Where a protobuf could not be read (`key`: the field path) and why.
struct ProtoError {
    key: String,
    message: String,
}

/// A protobuf field's value, by wire type.
enum Field<'a> {
    Varint(u64),
    /// Eight bytes (a double or fixed64; no field read here has this type).
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A reader over the fields of one protobuf message.
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    /// The message's path, for errors.
    at: String,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8], at: impl Into<String>) -> Self {
        Self { data, pos: 0, at: at.into() }
    }

    fn err(&self, message: impl Into<String>) -> ProtoError {
        ProtoError { key: self.at.clone(), message: format!("{} (byte {})", message.into(), self.pos) }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(self.err(format!("field of {n} bytes past the end of {} bytes", self.data.len()))),
        }
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtoError> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Field::Bytes(self.take(usize::try_from(n).unwrap_or(usize::MAX))?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default())),
            w => return Err(self.err(format!("field {number} has wire type {w}, which no SentencePiece model uses"))),
        };
        if number == 0 {
            return Err(self.err("field number 0"));
        }
        Ok(Some((number, value)))
    }
}

/// Reads `pieces`, `trainer_spec.model_type` and `normalizer_spec.precompiled_charsmap` of a `ModelProto`.
fn read_model_proto(data: &[u8]) -> Result<SpmModel, ProtoError> {
    let mut model = SpmModel { pieces: Vec::new(), control: Vec::new(), user_defined: Vec::new(), model_type: 1, precompiled_charsmap: None };
    let mut top = Fields::new(data, "");
    while let Some((number, field)) = top.next_field()? {
        match (number, field) {
            (1, Field::Bytes(b)) => {
                let i = model.pieces.len();
                let mut piece = Fields::new(b, format!("pieces[{i}]"));
                let (mut text, mut score, mut kind) = (None, 0.0f32, 1u64);
                while let Some((n, f)) = piece.next_field()? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => text = Some(std::str::from_utf8(s).map_err(|_| piece.err("piece is not UTF-8"))?.to_string()),
                        (2, Field::Fixed32(s)) => score = f32::from_bits(s),
                        (3, Field::Varint(t)) => kind = t,
                        (1..=3, _) => return Err(piece.err(format!("field {n} has the wrong wire type"))),
                        _ => {}
                    }
                }
                let text = text.ok_or_else(|| piece.err("no piece text"))?;
                match kind {
                    3 => model.control.push(text.clone()),
                    4 => model.user_defined.push(text.clone()),
                    _ => {}
                }
                model.pieces.push((text, f64::from(score)));
            }
            (2, Field::Bytes(b)) => {
                let mut spec = Fields::new(b, "trainer_spec");
                while let Some((n, f)) = spec.next_field()? {
                    if let (3, Field::Varint(v)) = (n, f) {
                        model.model_type = v;
                    }
                }
            }
            (3, Field::Bytes(b)) => {
                let mut spec = Fields::new(b, "normalizer_spec");
                while let Some((n, f)) = spec.next_field()? {
                    if let (2, Field::Bytes(m)) = (n, f) {
                        model.precompiled_charsmap = Some(m.to_vec());
                    }
                }
            }
            (1..=3, _) => return Err(top.err(format!("field {number} is not a message"))),
            _ => {}
        }
    }
    Ok(model)
}
