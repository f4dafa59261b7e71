//! guided-diffusion's `AttentionBlock`: self-attention over the pixels with a group norm, a fused qkv
//! `Conv1d` and a `Conv1d` output projection, in either qkv channel order (`QKVAttention` /
//! `QKVAttentionLegacy`).

use super::resblock::group_norm32;
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::attention::{split_qkv, QkvLayout};
use crate::GroupNorm;

/// A kernel-1 `Conv1d` over `[B, C_in, T]` (`weight [out, in, 1]`, `bias [out]`).
#[derive(Debug, Clone)]
struct Conv1x1 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1x1 {
    fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self { weight: vb.get((cout, cin, 1), "weight")?.squeeze(2)?, bias: vb.get(cout, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.to_dtype(x.dtype())?;
        w.broadcast_left(x.dim(0)?)?.matmul(x)?.broadcast_add(&self.bias.to_dtype(x.dtype())?.unsqueeze(1)?)
    }
}

/// The number of heads guided-diffusion gives a `channels`-wide block: `channels / num_head_channels`
/// when `num_head_channels` is set (not -1), else `num_heads`.
pub fn attention_heads(channels: usize, num_heads: usize, num_head_channels: Option<usize>) -> Result<usize> {
    let heads = match num_head_channels {
        Some(0) => crate::candle::bail!("AttentionBlock: num_head_channels must be positive"),
        Some(hc) if !channels.is_multiple_of(hc) => crate::candle::bail!("AttentionBlock: {channels} channels are not divisible by num_head_channels {hc}"),
        Some(hc) => channels / hc,
        None => num_heads,
    };
    if heads == 0 || !channels.is_multiple_of(heads) {
        crate::candle::bail!("AttentionBlock: {channels} channels cannot be split into {heads} heads");
    }
    Ok(heads)
}

/// `AttentionBlock(channels, num_heads, num_head_channels, use_new_attention_order)`.
/// Keys: `norm`, `qkv` (`[3C, C, 1]`), `proj_out` (`[C, C, 1]`). Returns `x + proj_out(attention(qkv(norm(x))))`.
///
/// As the original: q and k are each scaled by `d^(-1/4)` before `q^T k`, the softmax runs in `f32`
/// (`f64` for `f64` inputs), and the output channels are head-major (`h * d + j`).
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    norm: GroupNorm,
    qkv: Conv1x1,
    proj_out: Conv1x1,
    heads: usize,
    layout: QkvLayout,
}

impl AttentionBlock {
    /// Loads a block over `channels` channels with `heads` heads; `new_order` selects `QKVAttention`
    /// (qkv rows `[q | k | v]`, each split into heads) over `QKVAttentionLegacy` (per head `[q | k | v]`).
    pub fn new(vb: VarBuilder, channels: usize, heads: usize, new_order: bool) -> Result<Self> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            crate::candle::bail!("AttentionBlock: {channels} channels cannot be split into {heads} heads");
        }
        Ok(Self {
            norm: group_norm32(vb.pp("norm"), channels)?,
            qkv: Conv1x1::new(vb.pp("qkv"), channels, 3 * channels)?,
            proj_out: Conv1x1::new(vb.pp("proj_out"), channels, channels)?,
            heads,
            layout: if new_order { QkvLayout::QkvThenHeads } else { QkvLayout::HeadsThenQkv },
        })
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Applies the block to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let tokens = x.reshape((b, c, h * w))?;
        let qkv = self.qkv.forward(&self.norm.forward(&tokens)?)?;
        let (q, k, v) = split_qkv(&qkv, self.heads, self.layout)?;
        let d = c / self.heads;
        let scale = 1.0 / (d as f64).sqrt().sqrt();
        // weight[n, t, s] = sum_c (q[n, c, t] * scale) (k[n, c, s] * scale)
        let weight = (q * scale)?.t()?.contiguous()?.matmul(&(k * scale)?.contiguous()?)?;
        // In f32 (f64 for f64), rounded once to x's dtype, as the original's `softmax(w.float()).type(w.dtype)`.
        let weight = boot_sdk::ops::softmax_last_dim(&weight)?;
        // a[n, c, t] = sum_s weight[n, t, s] v[n, c, s]
        let a = v.contiguous()?.matmul(&weight.t()?.contiguous()?)?.reshape((b, c, h * w))?;
        let out = self.proj_out.forward(&a)?;
        (tokens + out)?.reshape((b, c, h, w))
    }
}
