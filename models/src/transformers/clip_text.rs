//! transformers' `CLIPTextModel` (`models/clip/modeling_clip.py`): the text encoder of Stable Diffusion
//! (SD 1.x: OpenAI CLIP ViT-L/14, `quick_gelu`; SD 2.x: the OpenCLIP ViT-H/14 text tower with its last layer
//! dropped, 23 layers, exact `gelu`). `forward` returns `last_hidden_state` (after `final_layer_norm`), what the
//! pipelines pass to the UNet as `encoder_hidden_states`. Causal self-attention, no padding mask (the pipelines
//! pad to 77 with the end token and attend to it).
//!
//! Keys (a `text_encoder/` folder as-is): `text_model.embeddings.{token,position}_embedding.weight`,
//! `text_model.encoder.layers.i.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}`,
//! `text_model.final_layer_norm`. transformers 5 writes the same keys without the `text_model.` prefix, and
//! older checkpoints carry a `position_ids` buffer: [`ClipTextModel::canonical_tensors`] maps a file's tensors
//! to the keys above.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::candle::{DType, Device, Module, Result, Tensor};
use crate::candle_nn::{Embedding, VarBuilder};
use crate::layers::activation::Activation;
use crate::layers::layer_norm::LayerNorm;
use crate::{scaled_dot_product_attention, Linear};

/// `text_encoder/config.json` (`CLIPTextConfig`; the keys the encoder reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    /// Token table size.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Positions (77).
    #[serde(default = "seventy_seven")]
    pub max_position_embeddings: usize,
    /// `quick_gelu` or `gelu`.
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    /// Layer norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
}

fn seventy_seven() -> usize {
    77
}
fn quick_gelu() -> String {
    "quick_gelu".into()
}
fn eps() -> f64 {
    1e-5
}

/// Keys of a `CLIPTextConfig` that do not change the encoder's hidden states.
const OTHER_KEYS: &[&str] = &[
    "architectures",
    "attention_dropout",
    "dropout",
    "initializer_factor",
    "initializer_range",
    "model_type",
    "projection_dim",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
];

impl ClipTextConfig {
    /// Reads `text_encoder/config.json` (upstream JSON: one policy, `crate::config`).
    pub fn from_json_file(path: &Path) -> crate::Result<Self> {
        crate::config::read_json(path, OTHER_KEYS)
    }

    /// Parses a config's text; `source` names it in errors.
    pub fn from_json_str(text: &str, source: &str) -> crate::Result<Self> {
        crate::config::parse_json(text, source, OTHER_KEYS)
    }
}

/// One pre-norm transformer layer.
#[derive(Debug, Clone)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    act: Activation,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, c: &ClipTextConfig, act: Activation) -> Result<Self> {
        let (d, a) = (c.hidden_size, vb.pp("self_attn"));
        Ok(Self {
            layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), d, c.layer_norm_eps, true)?,
            q_proj: Linear::new(a.pp("q_proj"), d, d, true)?,
            k_proj: Linear::new(a.pp("k_proj"), d, d, true)?,
            v_proj: Linear::new(a.pp("v_proj"), d, d, true)?,
            out_proj: Linear::new(a.pp("out_proj"), d, d, true)?,
            layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), d, c.layer_norm_eps, true)?,
            fc1: Linear::new(vb.pp("mlp.fc1"), d, c.intermediate_size, true)?,
            fc2: Linear::new(vb.pp("mlp.fc2"), c.intermediate_size, d, true)?,
            heads: c.num_attention_heads,
            act,
        })
    }

    fn forward(&self, x: &Tensor, causal: &Tensor) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let h = self.layer_norm1.forward(x)?;
        let split = |t: Tensor| t.reshape((b, l, self.heads, d / self.heads))?.transpose(1, 2);
        let (q, k, v) = (split(self.q_proj.forward(&h)?)?, split(self.k_proj.forward(&h)?)?, split(self.v_proj.forward(&h)?)?);
        let o = scaled_dot_product_attention(&q, &k, &v, Some(causal))?.transpose(1, 2)?.reshape((b, l, d))?;
        let x = (x + self.out_proj.forward(&o)?)?;
        let h = self.fc2.forward(&self.act.forward(&self.fc1.forward(&self.layer_norm2.forward(&x)?)?)?)?;
        x + h
    }
}

/// `CLIPTextModel` up to `last_hidden_state`.
#[derive(Debug, Clone)]
pub struct ClipTextModel {
    token_embedding: Embedding,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
}

impl ClipTextModel {
    /// A `text_encoder/` file's tensors under the keys [`ClipTextModel::new`] reads: `text_model.` prefixed
    /// (transformers 5 saves without it), the `position_ids` buffer dropped.
    pub fn canonical_tensors(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
        tensors
            .into_iter()
            .filter(|(k, _)| !k.ends_with("embeddings.position_ids"))
            .map(|(k, v)| (if k.starts_with("text_model.") { k } else { format!("text_model.{k}") }, v))
            .collect()
    }

    /// Loads the encoder's tensors from `vb` (the folder's keys, `text_model.*`).
    pub fn new(vb: VarBuilder, cfg: &ClipTextConfig) -> crate::Result<Self> {
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            anyhow::bail!("CLIPTextModel: hidden_size {} is not a multiple of num_attention_heads {}", cfg.hidden_size, cfg.num_attention_heads);
        }
        let act = Activation::from_name(&cfg.hidden_act)?;
        let t = vb.pp("text_model");
        let e = t.pp("embeddings");
        let token_embedding = Embedding::new(e.get((cfg.vocab_size, cfg.hidden_size), "token_embedding.weight")?, cfg.hidden_size);
        let position_embedding = e.get((cfg.max_position_embeddings, cfg.hidden_size), "position_embedding.weight")?;
        let layers = (0..cfg.num_hidden_layers).map(|i| EncoderLayer::new(t.pp(format!("encoder.layers.{i}")), cfg, act)).collect::<Result<Vec<_>>>()?;
        let final_layer_norm = LayerNorm::new(t.pp("final_layer_norm"), cfg.hidden_size, cfg.layer_norm_eps, true)?;
        Ok(Self { token_embedding, position_embedding, layers, final_layer_norm })
    }

    /// `last_hidden_state` `[B, L, hidden_size]` of token ids `[B, L]` (`L <= max_position_embeddings`).
    pub fn forward(&self, input_ids: &Tensor) -> crate::Result<Tensor> {
        let (_, l) = input_ids.dims2()?;
        let max = self.position_embedding.dim(0)?;
        if l > max {
            anyhow::bail!("CLIPTextModel: {l} tokens, the model has {max} positions");
        }
        let mut x = self.token_embedding.forward(input_ids)?.broadcast_add(&self.position_embedding.narrow(0, 0, l)?)?;
        let causal = causal_bias(l, x.dtype(), x.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, &causal)?;
        }
        Ok(self.final_layer_norm.forward(&x)?)
    }
}

/// `[1, 1, L, L]` additive mask: 0 on and below the diagonal, f32's lowest value above (as transformers).
fn causal_bias(l: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let work = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let v: Vec<f64> = (0..l * l).map(|i| if i % l > i / l { f32::MIN as f64 } else { 0.0 }).collect();
    Tensor::from_vec(v, (1, 1, l, l), device)?.to_dtype(work)
}
