//! guided-diffusion's `ResBlock`: a residual block conditioned on the timestep embedding, optionally
//! resampling (nearest 2x up / 2x2 average-pool down) inside the block.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use boot_sdk::ops::{avg_pool2x, upsample_nearest2x};
use boot_sdk::ops::silu;
use crate::{Conv2d, Conv2dConfig, GroupNorm, Linear};

/// `GroupNorm32`: guided-diffusion's `normalization(channels)`, always 32 groups with eps 1e-5.
pub fn group_norm32(vb: VarBuilder, channels: usize) -> Result<GroupNorm> {
    GroupNorm::new(vb, channels, 32, 1e-5)
}

/// Options of a [`ResBlock`], named as guided-diffusion's constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResBlockConfig {
    /// Input channels (`channels`).
    pub channels: usize,
    /// Width of the timestep embedding.
    pub emb_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// FiLM-style conditioning: `norm(h) * (1 + scale) + shift` instead of `h + emb`.
    pub use_scale_shift_norm: bool,
    /// Nearest 2x up-sampling inside the block.
    pub up: bool,
    /// 2x2 average-pool down-sampling inside the block.
    pub down: bool,
}

/// `ResBlock(channels, emb_channels, dropout, out_channels, use_conv=False, use_scale_shift_norm, up, down)`.
/// Keys: `in_layers.0` (norm), `in_layers.2` (3x3 conv), `emb_layers.1` (linear), `out_layers.0` (norm),
/// `out_layers.3` (3x3 conv), and `skip_connection` (1x1 conv) when the channel count changes.
#[derive(Debug, Clone)]
pub struct ResBlock {
    in_norm: GroupNorm,
    in_conv: Conv2d,
    emb_layer: Linear,
    out_norm: GroupNorm,
    out_conv: Conv2d,
    skip: Option<Conv2d>,
    cfg: ResBlockConfig,
}

impl ResBlock {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: ResBlockConfig) -> Result<Self> {
        if cfg.up && cfg.down {
            crate::candle::bail!("ResBlock: up and down are exclusive");
        }
        let (cin, cout) = (cfg.channels, cfg.out_channels);
        let emb_out = if cfg.use_scale_shift_norm { 2 * cout } else { cout };
        Ok(Self {
            in_norm: group_norm32(vb.pp("in_layers.0"), cin)?,
            in_conv: Conv2d::new(vb.pp("in_layers.2"), Conv2dConfig::plain(cin, cout, 3))?,
            emb_layer: Linear::new(vb.pp("emb_layers.1"), cfg.emb_channels, emb_out, true)?,
            out_norm: group_norm32(vb.pp("out_layers.0"), cout)?,
            out_conv: Conv2d::new(vb.pp("out_layers.3"), Conv2dConfig::plain(cout, cout, 3))?,
            skip: if cin != cout { Some(Conv2d::new(vb.pp("skip_connection"), Conv2dConfig::plain(cin, cout, 1))?) } else { None },
            cfg,
        })
    }

    /// The block's configuration.
    pub fn config(&self) -> &ResBlockConfig {
        &self.cfg
    }

    /// Applies the block to `x` (`[B, channels, H, W]`) with the embedding `emb` (`[B, emb_channels]`).
    pub fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let mut h = self.in_norm.forward_modulated(x, None, true)?;
        let mut x = x.clone();
        if self.cfg.up {
            h = upsample_nearest2x(&h)?;
            x = upsample_nearest2x(&x)?;
        } else if self.cfg.down {
            h = avg_pool2x(&h)?;
            x = avg_pool2x(&x)?;
        }
        h = self.in_conv.forward(&h)?;
        // The embedding may be wider than `h` (an `f32` embedding of a half-precision body): cast once here.
        let emb_out = self.emb_layer.forward(&silu(emb)?)?.to_dtype(h.dtype())?.unsqueeze(2)?.unsqueeze(3)?;
        h = if self.cfg.use_scale_shift_norm {
            let c = self.cfg.out_channels;
            let (scale, shift) = (emb_out.narrow(1, 0, c)?, emb_out.narrow(1, c, c)?);
            self.out_norm.forward_modulated(&h, Some((&scale, &shift)), true)?
        } else {
            self.out_norm.forward_modulated(&h.broadcast_add(&emb_out)?, None, true)?
        };
        h = self.out_conv.forward(&h)?;
        match &self.skip {
            Some(s) => s.forward(&x)? + h,
            None => x + h,
        }
    }
}
