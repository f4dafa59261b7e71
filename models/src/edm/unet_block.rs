//! EDM's unified UNet block (`training/networks.py: UNetBlock`): the residual block of DDPM++, NCSN++ and
//! ADM with a time embedding (additive, or ADM's adaptive scale-shift), optional 2x up/down-sampling with a
//! FIR filter, and optional multi-head self-attention.

use crate::{Conv2d, Conv2dConfig, GroupNorm, Linear, QkvAttention};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// Options of a [`UNetBlock`], named as EDM's constructor arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct UNetBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Width of the embedding vector.
    pub emb_channels: usize,
    /// 2x up-sampling.
    pub up: bool,
    /// 2x down-sampling.
    pub down: bool,
    /// Self-attention after the residual part.
    pub attention: bool,
    /// Number of heads; `None` = `out_channels / channels_per_head` (so DhariwalUNet blocks narrower than
    /// `channels_per_head` get 0 heads: no attention at all).
    pub num_heads: Option<usize>,
    /// Channels per head when `num_heads` is `None` (EDM default 64).
    pub channels_per_head: usize,
    /// Factor applied after each residual sum (SongUNet `sqrt(0.5)`, DhariwalUNet 1).
    pub skip_scale: f64,
    /// Group norm epsilon (SongUNet 1e-6, DhariwalUNet 1e-5).
    pub eps: f64,
    /// FIR taps for up/down-sampling.
    pub resample_filter: Vec<f64>,
    /// A 1x1 skip projection even when the channel count does not change (SongUNet).
    pub resample_proj: bool,
    /// ADM's scale-shift: `silu(shift + norm1(x) * (scale + 1))`; otherwise `silu(norm1(x + affine(emb)))`.
    pub adaptive_scale: bool,
}

impl UNetBlockConfig {
    /// The effective number of attention heads (0 = no attention), EDM's rule.
    pub fn heads(&self) -> usize {
        if !self.attention {
            0
        } else {
            self.num_heads.unwrap_or(self.out_channels / self.channels_per_head.max(1))
        }
    }

    /// Kernel of the skip connection: `None` = identity; `Some(0)` = resampling only; `Some(1)` = 1x1 conv.
    pub fn skip_kernel(&self) -> Option<usize> {
        if self.out_channels != self.in_channels || self.up || self.down {
            Some(if self.resample_proj || self.out_channels != self.in_channels { 1 } else { 0 })
        } else {
            None
        }
    }
}

/// EDM's `UNetBlock`. Keys: `norm0`, `conv0`, `affine`, `norm1`, `conv1`, `skip` (when channels change or
/// resampling), and `norm2`, `qkv`, `proj` when it attends.
#[derive(Debug, Clone)]
pub struct UNetBlock {
    norm0: GroupNorm,
    conv0: Conv2d,
    affine: Linear,
    norm1: GroupNorm,
    conv1: Conv2d,
    skip: Option<Conv2d>,
    attn: Option<QkvAttention>,
    cfg: UNetBlockConfig,
}

impl UNetBlock {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: UNetBlockConfig) -> Result<Self> {
        let (cin, cout) = (cfg.in_channels, cfg.out_channels);
        let resampling = |in_c: usize, out_c: usize, kernel: usize| Conv2dConfig {
            in_channels: in_c,
            out_channels: out_c,
            kernel,
            bias: true,
            up: cfg.up,
            down: cfg.down,
            resample_filter: cfg.resample_filter.clone(),
            fused_resample: false,
        };
        let norm0 = GroupNorm::edm(vb.pp("norm0"), cin, cfg.eps)?;
        let conv0 = Conv2d::new(vb.pp("conv0"), resampling(cin, cout, 3))?;
        let affine = Linear::new(vb.pp("affine"), cfg.emb_channels, cout * if cfg.adaptive_scale { 2 } else { 1 }, true)?;
        let norm1 = GroupNorm::edm(vb.pp("norm1"), cout, cfg.eps)?;
        let conv1 = Conv2d::new(vb.pp("conv1"), Conv2dConfig::plain(cout, cout, 3))?;
        let skip = match cfg.skip_kernel() {
            Some(k) => Some(Conv2d::new(vb.pp("skip"), resampling(cin, cout, k))?),
            None => None,
        };
        let heads = cfg.heads();
        let attn = if heads > 0 { Some(QkvAttention::edm(vb.clone(), cout, heads, cfg.eps)?) } else { None };
        Ok(Self { norm0, conv0, affine, norm1, conv1, skip, attn, cfg })
    }

    /// The block's configuration.
    pub fn config(&self) -> &UNetBlockConfig {
        &self.cfg
    }

    /// Applies the block to `x` (`[B, C_in, H, W]`) with embedding `emb` (`[B or 1, emb_channels]`).
    pub fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let orig = x;
        let mut x = self.conv0.forward(&self.norm0.forward_modulated(x, None, true)?)?;
        // The embedding may be wider than `x` (an `f32` embedding of a half-precision body): cast once here.
        let params = self.affine.forward(emb)?.to_dtype(x.dtype())?.unsqueeze(2)?.unsqueeze(3)?;
        x = if self.cfg.adaptive_scale {
            let cout = self.cfg.out_channels;
            let scale = params.narrow(1, 0, cout)?;
            let shift = params.narrow(1, cout, cout)?;
            self.norm1.forward_modulated(&x, Some((&scale, &shift)), true)?
        } else {
            self.norm1.forward_modulated(&x.broadcast_add(&params)?, None, true)?
        };
        x = self.conv1.forward(&x)?;
        x = match &self.skip {
            Some(s) => (x + s.forward(orig)?)?,
            None => (x + orig)?,
        };
        x = (x * self.cfg.skip_scale)?;
        if let Some(attn) = &self.attn {
            x = ((attn.forward(&x)? + &x)? * self.cfg.skip_scale)?;
        }
        Ok(x)
    }
}
