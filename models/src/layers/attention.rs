//! Attention: the scaled dot-product core (logits and softmax in at least `f32`, as EDM's `AttentionOp`),
//! the channels-first self-attention of EDM/ADM UNets ([`QkvAttention`], with the three qkv channel layouts
//! in use), and a reusable cross-attention ([`CrossAttention`]: q from `x`, k/v from a context).

use crate::{Conv2d, Conv2dConfig, GroupNorm, Linear};
use crate::candle::{DType, Result, Tensor, D};
use crate::candle_nn::VarBuilder;

/// `softmax(q k^T / sqrt(d) + bias) v` for `q [N, Lq, d]`, `k [N, Lk, d]`, `v [N, Lk, dv]` -> `[N, Lq, dv]`.
///
/// As EDM's `AttentionOp`: `k` is scaled by `1/sqrt(d)` before the product, and the logits and softmax are
/// computed in `f32` (in `f64` for `f64` inputs), then cast back. `bias` is added to the logits and must
/// broadcast to `[N, Lq, Lk]` (use large negative values to mask keys).
pub fn scaled_dot_product_attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dtype = q.dtype();
    let work = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let d = k.dim(D::Minus1)?;
    let ks = (k / (d as f64).sqrt())?.to_dtype(work)?;
    let mut logits = q.to_dtype(work)?.contiguous()?.matmul(&ks.t()?.contiguous()?)?;
    if let Some(b) = bias {
        logits = logits.broadcast_add(&b.to_dtype(work)?)?;
    }
    let w = boot_sdk::ops::softmax_last_dim(&logits)?.to_dtype(dtype)?;
    w.matmul(&v.contiguous()?)
}

/// How the `3C` channels of a fused qkv projection are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkvLayout {
    /// EDM: `(head * C/heads + c) * 3 + {q, k, v}` — interleaved per channel.
    Interleaved,
    /// guided-diffusion `QKVAttentionLegacy`: per head, blocks `[q | k | v]` of `C/heads` channels.
    HeadsThenQkv,
    /// guided-diffusion `QKVAttention`: blocks `[q | k | v]` of `C` channels, each split into heads.
    QkvThenHeads,
}

/// Splits a fused `[B, 3C, L]` qkv tensor into `q`, `k`, `v`, each `[B * heads, C / heads, L]`.
pub fn split_qkv(qkv: &Tensor, heads: usize, layout: QkvLayout) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, c3, l) = qkv.dims3()?;
    let ch = c3 / 3 / heads;
    let n = b * heads;
    let part = |i: usize| -> Result<Tensor> {
        match layout {
            QkvLayout::Interleaved => qkv.reshape((n, ch, 3, l))?.narrow(2, i, 1)?.squeeze(2),
            QkvLayout::HeadsThenQkv => qkv.reshape((n, 3 * ch, l))?.narrow(1, i * ch, ch),
            QkvLayout::QkvThenHeads => qkv.narrow(1, i * (c3 / 3), c3 / 3)?.reshape((n, ch, l)),
        }
    };
    Ok((part(0)?, part(1)?, part(2)?))
}

/// Channels-first attention: `q [N, c, Lq]`, `k [N, c, Lk]`, `v [N, cv, Lk]` -> `[N, cv, Lq]`
/// (EDM's `einsum('nqk,nck->ncq')` after [`scaled_dot_product_attention`]).
pub fn attention_channels_first(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let out = scaled_dot_product_attention(&q.t()?, &k.t()?, &v.t()?, None)?;
    out.t()
}

/// Self-attention over the pixels of `[B, C, H, W]` with a group norm, a 1x1 qkv convolution and a 1x1
/// output projection: returns `proj(attention(qkv(norm(x))))`, the caller adds the residual.
/// EDM keys (inside a `UNetBlock`): `norm2`, `qkv` (`[3C, C, 1, 1]`), `proj`.
#[derive(Debug, Clone)]
pub struct QkvAttention {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    heads: usize,
    layout: QkvLayout,
}

impl QkvAttention {
    /// Loads `{norm}`, `{qkv}` and `{proj}` (key names given) for `channels` channels and `heads` heads.
    pub fn new(vb: VarBuilder, channels: usize, heads: usize, norm: GroupNorm, names: [&str; 2], layout: QkvLayout) -> Result<Self> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            crate::candle::bail!("attention: {channels} channels cannot be split into {heads} heads");
        }
        let qkv = Conv2d::new(vb.pp(names[0]), Conv2dConfig::plain(channels, 3 * channels, 1))?;
        let proj = Conv2d::new(vb.pp(names[1]), Conv2dConfig::plain(channels, channels, 1))?;
        Ok(Self { norm, qkv, proj, heads, layout })
    }

    /// EDM's attention inside a `UNetBlock`: `norm2` (EDM group count, `eps`), `qkv`, `proj`, interleaved qkv.
    pub fn edm(vb: VarBuilder, channels: usize, heads: usize, eps: f64) -> Result<Self> {
        let norm = GroupNorm::edm(vb.pp("norm2"), channels, eps)?;
        Self::new(vb, channels, heads, norm, ["qkv", "proj"], QkvLayout::Interleaved)
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// `proj(attention(qkv(norm(x))))` for `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let qkv = self.qkv.forward(&self.norm.forward(x)?)?.reshape((b, 3 * c, h * w))?;
        let (q, k, v) = split_qkv(&qkv, self.heads, self.layout)?;
        let a = attention_channels_first(&q, &k, &v)?;
        self.proj.forward(&a.reshape((b, c, h, w))?)
    }
}

/// Multi-head attention with `q` from `x` and `k`, `v` from a context (self-attention when the context is
/// `x`). diffusers key layout: `to_q`, `to_k`, `to_v` (no bias), `to_out.0` (with bias).
#[derive(Debug, Clone)]
pub struct CrossAttention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
}

impl CrossAttention {
    /// Loads a layer attending from `query_dim` features to `context_dim` features with `heads` heads of
    /// `head_dim` channels.
    pub fn new(vb: VarBuilder, query_dim: usize, context_dim: usize, heads: usize, head_dim: usize) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(Self {
            to_q: Linear::new(vb.pp("to_q"), query_dim, inner, false)?,
            to_k: Linear::new(vb.pp("to_k"), context_dim, inner, false)?,
            to_v: Linear::new(vb.pp("to_v"), context_dim, inner, false)?,
            to_out: Linear::new(vb.pp("to_out").pp("0"), inner, query_dim, true)?,
            heads,
        })
    }

    /// Builds the layer from its four projections.
    pub fn from_parts(to_q: Linear, to_k: Linear, to_v: Linear, to_out: Linear, heads: usize) -> Self {
        Self { to_q, to_k, to_v, to_out, heads }
    }

    /// `x [B, Lq, query_dim]` attends to `context [B, Lk, context_dim]` (to `x` itself when `None`, which
    /// needs `context_dim == query_dim`).
    /// `key_mask [B, Lk]` (1 = keep, 0 = ignore) masks padded context tokens.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>, key_mask: Option<&Tensor>) -> Result<Tensor> {
        let ctx = context.unwrap_or(x);
        let (b, lq, _) = x.dims3()?;
        let lk = ctx.dim(1)?;
        let heads = self.heads;
        let split = |t: Tensor, l: usize| -> Result<Tensor> {
            let inner = t.dim(2)?;
            t.reshape((b, l, heads, inner / heads))?.transpose(1, 2)?.reshape((b * heads, l, inner / heads))
        };
        let q = split(self.to_q.forward(x)?, lq)?;
        let k = split(self.to_k.forward(ctx)?, lk)?;
        let v = split(self.to_v.forward(ctx)?, lk)?;
        let bias = match key_mask {
            Some(m) => {
                let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
                // 0 for kept keys, -1e9 for masked ones, per head.
                let m = ((m.to_dtype(work)? - 1.0)? * 1e9)?;
                Some(m.unsqueeze(1)?.repeat((1, heads, 1))?.reshape((b * heads, 1, lk))?)
            }
            None => None,
        };
        let out = scaled_dot_product_attention(&q, &k, &v, bias.as_ref())?;
        let dh = out.dim(2)?;
        let out = out.reshape((b, heads, lq, dh))?.transpose(1, 2)?.reshape((b, lq, heads * dh))?;
        self.to_out.forward(&out)
    }
}
