//! diffusers' `Attention` with `added_kv_proj_dim` and its `AttnAddedKVProcessor2_0`
//! (`models/attention_processor.py`): the attention of DeepFloyd IF's `SimpleCrossAttnDownBlock2D`,
//! `SimpleCrossAttnUpBlock2D` and `UNetMidBlock2DSimpleCrossAttn`. The pixels attend to the text tokens and
//! (unless `only_cross_attention`) to themselves, in one softmax over `[text keys | pixel keys]`.

use crate::candle::{DType, Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::{scaled_dot_product_attention, GroupNorm, Linear};

/// Options of an [`AddedKvAttention`], named as diffusers' constructor arguments (as the `SimpleCrossAttn`
/// blocks pass them: `query_dim = cross_attention_dim = channels`, biased projections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedKvAttentionConfig {
    /// Channels of the feature map (queries, self keys / values, output).
    pub query_dim: usize,
    /// Channels per head (`dim_head`); `query_dim / dim_head` heads.
    pub dim_head: usize,
    /// Width of the text states (`added_kv_proj_dim`: the UNet's `cross_attention_dim`).
    pub added_kv_proj_dim: usize,
    /// Groups of `group_norm` over the feature map (the block's resnet groups; eps 1e-5).
    pub norm_num_groups: usize,
    /// Groups of `norm_cross` over the text states' channels (`cross_attention_norm = "group_norm"`, diffusers'
    /// `cross_attention_norm_num_groups` = 32, eps 1e-5); `None`: no `norm_cross`.
    pub cross_attention_norm_groups: Option<usize>,
    /// Attend to the text tokens only: no `to_k` / `to_v`.
    pub only_cross_attention: bool,
}

/// `Attention(added_kv_proj_dim=..)` with `AttnAddedKVProcessor2_0`. Keys: `group_norm`, `norm_cross`
/// (optional), `to_q`, `to_k` / `to_v` (unless only cross), `add_k_proj`, `add_v_proj`, `to_out.0`.
///
/// `x + to_out(softmax(q [k_text | k_self]^T / sqrt(d) + bias) [v_text | v_self])` with `q`, `k_self`,
/// `v_self` from `group_norm(x)` and `k_text`, `v_text` from `norm_cross(context)`. The residual is added and
/// nothing rescaled whatever `residual_connection` / `rescale_output_factor` say (the processor ignores them).
#[derive(Debug, Clone)]
pub struct AddedKvAttention {
    group_norm: GroupNorm,
    norm_cross: Option<GroupNorm>,
    to_q: Linear,
    to_kv: Option<(Linear, Linear)>,
    add_k_proj: Linear,
    add_v_proj: Linear,
    to_out: Linear,
    cfg: AddedKvAttentionConfig,
}

impl AddedKvAttention {
    /// Loads the layer's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: AddedKvAttentionConfig) -> Result<Self> {
        let c = cfg.query_dim;
        if cfg.dim_head == 0 || !c.is_multiple_of(cfg.dim_head) {
            crate::candle::bail!("attention: {c} channels cannot be split into heads of {}", cfg.dim_head);
        }
        let norm_cross = match cfg.cross_attention_norm_groups {
            Some(g) => Some(GroupNorm::new(vb.pp("norm_cross"), cfg.added_kv_proj_dim, g, 1e-5)?),
            None => None,
        };
        let to_kv = if cfg.only_cross_attention { None } else { Some((Linear::new(vb.pp("to_k"), c, c, true)?, Linear::new(vb.pp("to_v"), c, c, true)?)) };
        Ok(Self {
            group_norm: GroupNorm::new(vb.pp("group_norm"), c, cfg.norm_num_groups, 1e-5)?,
            norm_cross,
            to_q: Linear::new(vb.pp("to_q"), c, c, true)?,
            to_kv,
            add_k_proj: Linear::new(vb.pp("add_k_proj"), cfg.added_kv_proj_dim, c, true)?,
            add_v_proj: Linear::new(vb.pp("add_v_proj"), cfg.added_kv_proj_dim, c, true)?,
            to_out: Linear::new(vb.pp("to_out.0"), c, c, true)?,
            cfg,
        })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &AddedKvAttentionConfig {
        &self.cfg
    }

    /// Applies the layer to `x` (`[B, C, H, W]`) with the text states `context` (`[B, L, added_kv_proj_dim]`).
    /// `context_bias` (`[B, L]`, 0 for tokens and -10000 for padding, as `UNet2DConditionModel` makes it from
    /// `encoder_attention_mask`) is added to the logits of the text keys; the pixel keys get none.
    ///
    /// diffusers 0.42.1 pads this bias with one zero per pixel, which fits `[text | pixel]` keys; with
    /// `only_cross_attention` it raises a shape error (unless `L = H W`, when the bias lands on the text keys
    /// unpadded). This port applies the bias to the text keys in both cases.
    pub fn forward(&self, x: &Tensor, context: &Tensor, context_bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (lq, lt) = (h * w, context.dim(1)?);
        let (heads, d) = (c / self.cfg.dim_head, self.cfg.dim_head);
        let hidden = self.group_norm.forward(&x.reshape((b, c, lq))?)?.transpose(1, 2)?;
        let text = match &self.norm_cross {
            Some(n) => n.forward(&context.transpose(1, 2)?)?.transpose(1, 2)?,
            None => context.clone(),
        };
        let split = |t: Tensor, l: usize| -> Result<Tensor> { t.reshape((b, l, heads, d))?.transpose(1, 2)?.reshape((b * heads, l, d)) };
        let q = split(self.to_q.forward(&hidden)?, lq)?;
        let mut k = split(self.add_k_proj.forward(&text)?, lt)?;
        let mut v = split(self.add_v_proj.forward(&text)?, lt)?;
        if let Some((to_k, to_v)) = &self.to_kv {
            k = Tensor::cat(&[k, split(to_k.forward(&hidden)?, lq)?], 1)?;
            v = Tensor::cat(&[v, split(to_v.forward(&hidden)?, lq)?], 1)?;
        }
        let lk = k.dim(1)?;
        let bias = match context_bias {
            Some(bias) => {
                let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
                let bias = bias.to_dtype(work)?;
                let bias = if lk > lt { Tensor::cat(&[bias.clone(), Tensor::zeros((b, lk - lt), work, bias.device())?], 1)? } else { bias };
                Some(bias.unsqueeze(1)?.repeat((1, heads, 1))?.reshape((b * heads, 1, lk))?)
            }
            None => None,
        };
        let a = scaled_dot_product_attention(&q, &k, &v, bias.as_ref())?;
        let a = a.reshape((b, heads, lq, d))?.transpose(1, 2)?.reshape((b, lq, c))?;
        let out = self.to_out.forward(&a)?.transpose(1, 2)?.reshape((b, c, h, w))?;
        out + x
    }
}
