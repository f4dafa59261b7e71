//! Conditioning: what a teacher (and the student) is conditioned on besides the noisy image and time.

use crate::candle::Tensor;

/// Text conditioning: encoder hidden states and an optional attention mask.
#[derive(Debug, Clone)]
pub struct TextCond {
    /// `[B, L, D]` embeddings from the text encoder.
    pub embeddings: Tensor,
    /// `[B, L]` mask, 1 for real tokens and 0 for padding, where the teacher uses one.
    pub mask: Option<Tensor>,
}

/// Conditioning for a batch. Each field is present when the teacher takes it; a teacher may take several
/// (a super-resolution teacher takes `text` and `low_res`).
#[derive(Debug, Clone, Default)]
pub struct Cond {
    /// Class label per sample; `None` is the null label used for classifier-free guidance.
    pub class: Option<Vec<Option<u32>>>,
    /// Text embeddings.
    pub text: Option<TextCond>,
    /// `[B, C, h, w]` low-resolution image for super-resolution teachers, in the teacher's value range.
    pub low_res: Option<Tensor>,
    /// Per-sample noise level of a noise-augmented input (a cascade's stage II sees `low_res` noised to
    /// this level, DeepFloyd IF's `noise_level`), in the teacher's own units.
    pub noise_level: Option<Vec<f64>>,
}

/// What conditioning a teacher takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CondSpec {
    /// Number of classes for class-conditional teachers.
    pub num_classes: Option<usize>,
    /// `(length, dim)` of text embeddings for text-conditional teachers.
    pub text: Option<(usize, usize)>,
    /// `[C, h, w]` of the low-resolution input for super-resolution teachers.
    pub low_res: Option<[usize; 3]>,
}

impl CondSpec {
    /// True when the teacher takes any conditioning, so classifier-free guidance makes sense.
    pub fn is_conditional(&self) -> bool {
        self.num_classes.is_some() || self.text.is_some()
    }
}

impl Cond {
    /// No conditioning (unconditional teachers).
    pub fn none() -> Self {
        Self::default()
    }

    /// Class labels only.
    pub fn classes(labels: Vec<Option<u32>>) -> Self {
        Self { class: Some(labels), ..Self::default() }
    }

    /// The same conditioning with every class label replaced by the null label; text and low-res are kept.
    /// Teachers with text conditioning override [`crate::Teacher::null_cond`] to swap in their empty prompt.
    pub fn with_null_class(&self) -> Self {
        Self { class: self.class.as_ref().map(|c| vec![None; c.len()]), ..self.clone() }
    }

    /// Concatenates batches along the batch axis (used to run conditional and null passes in one call).
    pub fn cat(parts: &[&Cond]) -> crate::Result<Cond> {
        let class = if parts.iter().all(|p| p.class.is_some()) {
            Some(parts.iter().flat_map(|p| p.class.clone().unwrap_or_default()).collect())
        } else {
            None
        };
        let text = if parts.iter().all(|p| p.text.is_some()) {
            let emb: Vec<&Tensor> = parts.iter().filter_map(|p| p.text.as_ref().map(|t| &t.embeddings)).collect();
            let masks: Vec<&Tensor> = parts.iter().filter_map(|p| p.text.as_ref().and_then(|t| t.mask.as_ref())).collect();
            let mask = if masks.len() == parts.len() { Some(Tensor::cat(&masks, 0)?) } else { None };
            Some(TextCond { embeddings: Tensor::cat(&emb, 0)?, mask })
        } else {
            None
        };
        let low_res = if parts.iter().all(|p| p.low_res.is_some()) {
            let l: Vec<&Tensor> = parts.iter().filter_map(|p| p.low_res.as_ref()).collect();
            Some(Tensor::cat(&l, 0)?)
        } else {
            None
        };
        let noise_level = if parts.iter().all(|p| p.noise_level.is_some()) {
            Some(parts.iter().flat_map(|p| p.noise_level.clone().unwrap_or_default()).collect())
        } else {
            None
        };
        Ok(Cond { class, text, low_res, noise_level })
    }

    /// Rows `start..start + len` of the batch.
    pub fn narrow(&self, start: usize, len: usize) -> crate::Result<Cond> {
        Ok(Cond {
            class: self.class.as_ref().map(|c| c[start..start + len].to_vec()),
            text: match &self.text {
                Some(t) => Some(TextCond {
                    embeddings: t.embeddings.narrow(0, start, len)?,
                    mask: t.mask.as_ref().map(|m| m.narrow(0, start, len)).transpose()?,
                }),
                None => None,
            },
            low_res: self.low_res.as_ref().map(|l| l.narrow(0, start, len)).transpose()?,
            noise_level: self.noise_level.as_ref().map(|l| l[start..start + len].to_vec()),
        })
    }
}
