//! transformers' `T5EncoderModel` (`models/t5/modeling_t5.py`): the text encoder of DeepFloyd IF (T5 v1.1 XXL,
//! `feed_forward_proj = "gated-gelu"`). `forward` returns `last_hidden_state` (after `encoder.final_layer_norm`),
//! what `IFPipeline` passes to the UNet as `encoder_hidden_states`.
//!
//! As transformers computes it: pre-norm blocks with T5's RMS norm (no mean subtraction, no bias, the variance in
//! `f32`); self-attention without the `1/sqrt(d)` scaling (T5 folds it into the weights), with a learned relative
//! position bias (bidirectional buckets) that only block 0 holds and every block adds; the padding mask adds the
//! lowest finite value to the logits of padded keys; the feed-forward is gated (`wi_0`, `wi_1`, `wo`) for
//! `gated-*` and plain (`wi`, `wo`) otherwise. In `bf16` the norms, attention logits and softmax, and activation
//! are computed in `f32`. `f16` is refused: T5's activations overflow it (transformers clamps them; we do not).
//!
//! Keys (a `text_encoder/` folder as-is): `shared.weight` (or `encoder.embed_tokens.weight`, the same tied
//! table), `encoder.block.i.layer.0.{layer_norm, SelfAttention.{q,k,v,o}}` (+
//! `SelfAttention.relative_attention_bias` in block 0), `encoder.block.i.layer.1.{layer_norm,
//! DenseReluDense.{wi_0,wi_1,wo | wi,wo}}`, `encoder.final_layer_norm`. [`T5EncoderModel::canonical_tensors`]
//! drops the tied duplicate and decoder tensors of a file that has them.

use std::collections::HashMap;
use std::path::Path;

use boot_sdk::InputError;
use serde::Deserialize;

use crate::candle::{DType, Device, Module, Result, Tensor, D};
use crate::candle_nn::{Embedding, VarBuilder};
use crate::layers::activation::Activation;
use crate::Linear;

/// `text_encoder/config.json` (`T5Config`; the keys the encoder reads).
#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    /// Token table size (32128).
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// Width of the feed-forward layer.
    pub d_ff: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative position buckets (both directions together).
    #[serde(default = "thirty_two")]
    pub relative_attention_num_buckets: usize,
    /// Distance from which all relative positions share the last bucket.
    #[serde(default = "one_two_eight")]
    pub relative_attention_max_distance: usize,
    /// RMS norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// `relu` (T5), `gated-gelu` (T5 v1.1: `gelu_new`), or `[gated-]act` with act one of relu, gelu,
    /// gelu_new, gelu_pytorch_tanh, silu, swish.
    #[serde(default = "relu")]
    pub feed_forward_proj: String,
}

fn thirty_two() -> usize {
    32
}
fn one_two_eight() -> usize {
    128
}
fn eps() -> f64 {
    1e-6
}
fn relu() -> String {
    "relu".into()
}

/// Keys of a `T5Config` that do not change the encoder's hidden states (`dense_act_fn` and `is_gated_act`
/// are derived from `feed_forward_proj`, as transformers re-derives them).
const OTHER_KEYS: &[&str] = &[
    "architectures",
    "classifier_dropout",
    "decoder_start_token_id",
    "dense_act_fn",
    "dropout_rate",
    "dtype",
    "eos_token_id",
    "gradient_checkpointing",
    "initializer_factor",
    "is_decoder",
    "is_encoder_decoder",
    "is_gated_act",
    "model_type",
    "n_positions",
    "num_decoder_layers",
    "output_past",
    "pad_token_id",
    "scale_decoder_outputs",
    "tie_word_embeddings",
    "torch_dtype",
    "transformers_version",
    "use_cache",
];

/// The feed-forward's activation: [`Activation`] or transformers' `gelu_new` (tanh form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FfAct {
    Plain(Activation),
    GeluNew,
}

impl FfAct {
    /// Applies the activation, in `f32` for a half-precision `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = if matches!(dtype, DType::BF16 | DType::F16) { x.to_dtype(DType::F32)? } else { x.clone() };
        // candle's `gelu` is NewGELU's formula: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
        let y = match self {
            FfAct::GeluNew => x.gelu()?,
            FfAct::Plain(a) => a.forward(&x)?,
        };
        y.to_dtype(dtype)
    }
}

impl T5Config {
    /// Reads `text_encoder/config.json` (upstream JSON: one policy, `crate::config`); a `feed_forward_proj`
    /// this port does not know is an error naming the file.
    pub fn from_json_file(path: &Path) -> crate::Result<Self> {
        let cfg: Self = crate::config::read_json(path, OTHER_KEYS)?;
        cfg.check(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Parses a config's text; `source` names it in errors.
    pub fn from_json_str(text: &str, source: &str) -> crate::Result<Self> {
        let cfg: Self = crate::config::parse_json(text, source, OTHER_KEYS)?;
        cfg.check(source)?;
        Ok(cfg)
    }

    /// Whether the feed-forward is gated (`DenseReluDense.wi_0` / `wi_1`) and its activation, as
    /// transformers' `T5Config` derives `is_gated_act` and `dense_act_fn`.
    fn feed_forward(&self) -> std::result::Result<(bool, FfAct), String> {
        let f = self.feed_forward_proj.as_str();
        let parts: Vec<&str> = f.split('-').collect();
        let (gated, name) = match parts[..] {
            [name] => (false, name),
            ["gated", name] => (true, name),
            _ => return Err(format!("expected `ACT` or `gated-ACT` (e.g. relu, gated-gelu), found {f:?}")),
        };
        let act = match name {
            // transformers' backward compatibility: T5 v1.1's "gated-gelu" is the tanh form.
            "gelu" if gated => FfAct::GeluNew,
            "gelu_new" | "gelu_pytorch_tanh" => FfAct::GeluNew,
            "relu" | "gelu" | "silu" | "swish" => FfAct::Plain(Activation::from_name(name).map_err(|e| e.to_string())?),
            other => return Err(format!("unknown activation {other:?} in {f:?} (expected relu, gelu, gelu_new, gelu_pytorch_tanh, silu or swish)")),
        };
        Ok((gated, act))
    }

    fn check(&self, source: &str) -> crate::Result<()> {
        self.feed_forward().map_err(|m| InputError::new(source, "feed_forward_proj", m))?;
        for (key, v) in [("d_model", self.d_model), ("d_kv", self.d_kv), ("num_heads", self.num_heads), ("relative_attention_num_buckets", self.relative_attention_num_buckets)] {
            if v == 0 {
                return Err(InputError::new(source, key, "expected a positive size, found 0").into());
            }
        }
        Ok(())
    }
}

/// transformers' `T5Attention._relative_position_bucket` for `bidirectional = True` (the encoder): the bucket of
/// `relative_position = key - query`. Half the buckets are for keys after the query; in each half, distances
/// below a quarter of `num_buckets` have a bucket each, larger ones share log-spaced buckets up to
/// `max_distance` and the last bucket beyond. Computed in `f32` as torch does.
pub fn relative_position_bucket(relative_position: i64, num_buckets: usize, max_distance: usize) -> usize {
    let half = num_buckets / 2;
    let base = if relative_position > 0 { half } else { 0 };
    let distance = relative_position.unsigned_abs() as usize;
    let max_exact = half / 2;
    if distance < max_exact {
        return base + distance;
    }
    let ratio = (distance as f32 / max_exact as f32).ln() / ((max_distance as f64 / max_exact as f64).ln() as f32);
    let large = max_exact as i64 + (ratio * (half - max_exact) as f32) as i64;
    base + (large.max(0) as usize).min(half.saturating_sub(1))
}

/// T5's RMS norm: `weight * x / sqrt(mean(x^2) + eps)`, no mean subtraction, no bias; the statistic and the
/// normalisation in `f32` for half-precision inputs (then rounded to the input's dtype, as transformers).
#[derive(Debug, Clone)]
struct T5LayerNorm {
    weight: Tensor,
    eps: f64,
}

impl T5LayerNorm {
    fn new(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.get(dim, "weight")?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let work = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let xw = x.to_dtype(work)?;
        let var = xw.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xw.broadcast_div(&(var + self.eps)?.sqrt()?)?.to_dtype(dtype)?;
        y.broadcast_mul(&self.weight.to_dtype(dtype)?)
    }
}

/// One encoder block: self-attention then feed-forward, each pre-normed with a residual.
#[derive(Debug, Clone)]
struct T5Block {
    attn_norm: T5LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ff_norm: T5LayerNorm,
    /// `wi` (plain) or `wi_0` (gated: the activated half).
    wi: Linear,
    /// `wi_1` (gated: the linear half).
    wi_1: Option<Linear>,
    wo: Linear,
    act: FfAct,
    heads: usize,
    d_kv: usize,
}

impl T5Block {
    fn new(vb: VarBuilder, c: &T5Config, gated: bool, act: FfAct) -> Result<Self> {
        let (d, inner) = (c.d_model, c.num_heads * c.d_kv);
        let (a, f) = (vb.pp("layer.0"), vb.pp("layer.1"));
        let sa = a.pp("SelfAttention");
        let dense = f.pp("DenseReluDense");
        let (wi, wi_1) = if gated {
            (Linear::new(dense.pp("wi_0"), d, c.d_ff, false)?, Some(Linear::new(dense.pp("wi_1"), d, c.d_ff, false)?))
        } else {
            (Linear::new(dense.pp("wi"), d, c.d_ff, false)?, None)
        };
        Ok(Self {
            attn_norm: T5LayerNorm::new(a.pp("layer_norm"), d, c.layer_norm_epsilon)?,
            q: Linear::new(sa.pp("q"), d, inner, false)?,
            k: Linear::new(sa.pp("k"), d, inner, false)?,
            v: Linear::new(sa.pp("v"), d, inner, false)?,
            o: Linear::new(sa.pp("o"), inner, d, false)?,
            ff_norm: T5LayerNorm::new(f.pp("layer_norm"), d, c.layer_norm_epsilon)?,
            wi,
            wi_1,
            wo: Linear::new(dense.pp("wo"), c.d_ff, d, false)?,
            act,
            heads: c.num_heads,
            d_kv: c.d_kv,
        })
    }

    /// `x [B, L, d_model]`; `bias [B or 1, H, L, L]` (position bias + padding mask) in the logits' dtype.
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let dtype = x.dtype();
        let h = self.attn_norm.forward(x)?;
        let split = |t: Tensor| t.reshape((b, l, self.heads, self.d_kv))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = (split(self.q.forward(&h)?)?, split(self.k.forward(&h)?)?, split(self.v.forward(&h)?)?);
        // No 1/sqrt(d_kv): T5 folds it into the initialisation of q.
        let work = bias.dtype();
        let logits = q.to_dtype(work)?.matmul(&k.to_dtype(work)?.t()?)?.broadcast_add(bias)?;
        let w = boot_sdk::ops::softmax_last_dim(&logits)?.to_dtype(dtype)?;
        let o = w.matmul(&v)?.transpose(1, 2)?.reshape((b, l, self.heads * self.d_kv))?;
        let x = (x + self.o.forward(&o)?)?;
        let h = self.ff_norm.forward(&x)?;
        let mut g = self.act.forward(&self.wi.forward(&h)?)?;
        if let Some(wi_1) = &self.wi_1 {
            g = (g * wi_1.forward(&h)?)?;
        }
        x + self.wo.forward(&g)?
    }
}

/// `T5EncoderModel` up to `last_hidden_state`.
#[derive(Debug, Clone)]
pub struct T5EncoderModel {
    shared: Embedding,
    relative_attention_bias: Tensor,
    num_buckets: usize,
    max_distance: usize,
    blocks: Vec<T5Block>,
    final_layer_norm: T5LayerNorm,
}

impl T5EncoderModel {
    /// Refuses `f16` (one line naming the dtype): T5's hidden states exceed its range (transformers clamps
    /// them in `f16`; this port does not). `bf16`, `f32` and `f64` are fine.
    pub fn check_dtype(dtype: DType) -> crate::Result<()> {
        if dtype == DType::F16 {
            anyhow::bail!("T5EncoderModel: dtype f16 refused: T5 overflows in float16; use bf16 or f32");
        }
        Ok(())
    }

    /// A `text_encoder/` file's tensors under the keys [`T5EncoderModel::new`] reads: `encoder.embed_tokens.weight`
    /// dropped when `shared.weight` is there (transformers ties them), and `decoder.*` dropped (as
    /// `T5EncoderModel` ignores them).
    pub fn canonical_tensors(mut tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
        if tensors.contains_key("shared.weight") {
            tensors.remove("encoder.embed_tokens.weight");
        }
        tensors.retain(|k, _| !k.starts_with("decoder."));
        tensors
    }

    /// Loads the encoder's tensors from `vb` (the folder's keys) in `vb`'s dtype; `f16` is refused
    /// ([`T5EncoderModel::check_dtype`]) before any tensor is read.
    pub fn new(vb: VarBuilder, cfg: &T5Config) -> crate::Result<Self> {
        Self::check_dtype(vb.dtype())?;
        cfg.check("T5Config")?;
        let (gated, act) = cfg.feed_forward().map_err(|m| anyhow::anyhow!("T5Config: feed_forward_proj: {m}"))?;
        let d = cfg.d_model;
        let table = if vb.contains_tensor("shared.weight") || !vb.contains_tensor("encoder.embed_tokens.weight") {
            vb.get((cfg.vocab_size, d), "shared.weight")?
        } else {
            vb.get((cfg.vocab_size, d), "encoder.embed_tokens.weight")?
        };
        let e = vb.pp("encoder");
        let relative_attention_bias =
            e.pp("block.0.layer.0.SelfAttention").get((cfg.relative_attention_num_buckets, cfg.num_heads), "relative_attention_bias.weight")?;
        let blocks = (0..cfg.num_layers).map(|i| T5Block::new(e.pp(format!("block.{i}")), cfg, gated, act)).collect::<Result<Vec<_>>>()?;
        let final_layer_norm = T5LayerNorm::new(e.pp("final_layer_norm"), d, cfg.layer_norm_epsilon)?;
        Ok(Self {
            shared: Embedding::new(table, d),
            relative_attention_bias,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            blocks,
            final_layer_norm,
        })
    }

    /// `last_hidden_state` `[B, L, d_model]` of token ids `[B, L]` (`u32` or `i64`); `attention_mask` `[B, L]`
    /// (any dtype, 1 for tokens, 0 for padding: the tokenizer's mask, as `IFPipeline` passes it) or `None`
    /// (every token attended).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> crate::Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let x = self.shared.forward(input_ids)?;
        let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let mut bias = self.position_bias(l, x.device())?.to_dtype(work)?;
        if let Some(mask) = attention_mask {
            if mask.dims() != [b, l] {
                anyhow::bail!("T5EncoderModel: attention_mask has shape {:?}, input_ids {:?}", mask.dims(), [b, l]);
            }
            // Padded keys get the lowest finite value (transformers: the dtype's min; here the logits' f32).
            let lowest = if work == DType::F64 { f64::MIN } else { f32::MIN as f64 };
            let pad = ((mask.to_dtype(work)?.affine(-1.0, 1.0)? * lowest)?).reshape((b, 1, 1, l))?;
            bias = bias.broadcast_add(&pad)?;
        }
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(&x, &bias)?;
        }
        Ok(self.final_layer_norm.forward(&x)?)
    }

    /// Block 0's relative position bias `[1, H, L, L]` (query rows, key columns).
    fn position_bias(&self, l: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..l * l)
            .map(|i| relative_position_bucket((i % l) as i64 - (i / l) as i64, self.num_buckets, self.max_distance) as u32)
            .collect();
        let idx = Tensor::from_vec(buckets, l * l, device)?;
        let heads = self.relative_attention_bias.dim(1)?;
        self.relative_attention_bias.index_select(&idx, 0)?.reshape((l, l, heads))?.permute((2, 0, 1))?.unsqueeze(0)
    }
}
