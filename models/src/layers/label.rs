//! Class labels: one-hot rows (an all-zero row is the unconditional / null label, as EDM's wrappers make
//! it), a linear label embedding (EDM `map_label`) and a lookup table embedding (`nn.Embedding`).

use crate::candle::{DType, Device, Tensor};
use crate::candle_nn::VarBuilder;
use boot_sdk::InputError;

/// `[B, num_classes]` one-hot rows; `None` gives an all-zero row (unconditional). A label out of range is an
/// [`InputError`].
pub fn one_hot_labels(labels: &[Option<u32>], num_classes: usize, dtype: DType, device: &Device) -> crate::Result<Tensor> {
    let mut v = vec![0f32; labels.len() * num_classes];
    for (row, label) in labels.iter().enumerate() {
        if let Some(c) = *label {
            let c = c as usize;
            if c >= num_classes {
                return Err(InputError::config("class label", format!("label {c} out of range (the model has {num_classes} classes)")).into());
            }
            v[row * num_classes + c] = 1.0;
        }
    }
    Ok(Tensor::from_vec(v, (labels.len(), num_classes), device)?.to_dtype(dtype)?)
}

/// Linear embedding of label vectors: `map(labels * input_scale)` with `weight [out, label_dim]` and an
/// optional `bias`. EDM's SongUNet uses a bias and `input_scale = sqrt(label_dim)`; DhariwalUNet neither.
#[derive(Debug, Clone)]
pub struct LabelEmbedding {
    map: crate::Linear,
    input_scale: f64,
}

impl LabelEmbedding {
    /// Loads `weight` (and `bias`).
    pub fn new(vb: VarBuilder, label_dim: usize, out_features: usize, bias: bool, input_scale: f64) -> crate::candle::Result<Self> {
        Ok(Self { map: crate::Linear::new(vb, label_dim, out_features, bias)?, input_scale })
    }

    /// Label width.
    pub fn label_dim(&self) -> usize {
        self.map.in_features()
    }

    /// Embeds `labels` (`[B, label_dim]`, e.g. from [`one_hot_labels`]).
    pub fn forward(&self, labels: &Tensor) -> crate::candle::Result<Tensor> {
        let x = if self.input_scale == 1.0 { labels.clone() } else { (labels * self.input_scale)? };
        self.map.forward(&x)
    }
}

/// Lookup-table class embedding (`torch.nn.Embedding`, key `weight [rows, dim]`). `null_row` is the row used
/// for a `None` label (a learned null class); without one, `None` embeds to zeros.
#[derive(Debug, Clone)]
pub struct ClassEmbeddingTable {
    weight: Tensor,
    null_row: Option<u32>,
}

impl ClassEmbeddingTable {
    /// Loads a `rows x dim` table.
    pub fn new(vb: VarBuilder, rows: usize, dim: usize, null_row: Option<u32>) -> crate::candle::Result<Self> {
        Ok(Self { weight: vb.get((rows, dim), "weight")?, null_row })
    }

    /// Embeds labels into `[B, dim]`; a label out of range is an [`InputError`].
    pub fn forward(&self, labels: &[Option<u32>]) -> crate::Result<Tensor> {
        let (rows, _) = self.weight.dims2()?;
        let mut idx = Vec::with_capacity(labels.len());
        let mut keep = Vec::with_capacity(labels.len());
        for l in labels {
            let (i, k) = match (*l, self.null_row) {
                (Some(c), _) => (c, 1f32),
                (None, Some(n)) => (n, 1.0),
                (None, None) => (0, 0.0),
            };
            if i as usize >= rows {
                return Err(InputError::config("class label", format!("label {i} out of range (the table has {rows} rows)")).into());
            }
            idx.push(i);
            keep.push(k);
        }
        let dev = self.weight.device();
        let ids = Tensor::from_vec(idx, labels.len(), dev)?;
        let emb = self.weight.index_select(&ids, 0)?;
        let keep = Tensor::from_vec(keep, (labels.len(), 1), dev)?.to_dtype(emb.dtype())?;
        Ok(emb.broadcast_mul(&keep)?)
    }
}
