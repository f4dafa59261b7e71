//! 2-D convolution with PyTorch's key layout (`weight [out, in, k, k]`, `bias [out]`) and EDM's optional FIR
//! up/down-sampling (`training/networks.py: Conv2d`), including `kernel = 0` (resampling only, no weights)
//! and the fused down/up paths.

use boot_sdk::ops as functional;
use crate::layers::resample::ResampleFilter;
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// Shape and resampling options of a [`Conv2d`].
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size; 0 means no weights (pure resampling).
    pub kernel: usize,
    /// Whether there is a `bias` (only when `kernel > 0`).
    pub bias: bool,
    /// 2x up-sampling before the convolution.
    pub up: bool,
    /// 2x down-sampling before the convolution.
    pub down: bool,
    /// FIR taps of the resampling filter (EDM `resample_filter`, e.g. `[1, 1]` or `[1, 3, 3, 1]`).
    pub resample_filter: Vec<f64>,
    /// EDM's fused resampling: down = convolve (padding `k/2 + (f-1)/2`) then filter with stride 2 and no
    /// padding; up = transposed filter (padding `k/2 + (f-1)/2`) then convolve with no padding.
    pub fused_resample: bool,
}

impl Conv2dConfig {
    /// A plain `kernel x kernel` convolution with bias and "same" padding.
    pub fn plain(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            bias: true,
            up: false,
            down: false,
            resample_filter: vec![1.0, 1.0],
            fused_resample: false,
        }
    }
}

/// EDM's `Conv2d`: optional up/down-sampling with a FIR filter and an optional `k x k` convolution.
/// Keys: `weight`, `bias` (when `kernel > 0`), `resample_filter` (when `up` or `down`).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    filter: Option<ResampleFilter>,
    cfg: Conv2dConfig,
}

impl Conv2d {
    /// Loads the layer's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: Conv2dConfig) -> Result<Self> {
        if cfg.up && cfg.down {
            crate::candle::bail!("conv2d: up and down are exclusive");
        }
        let k = cfg.kernel;
        let weight = if k > 0 { Some(vb.get((cfg.out_channels, cfg.in_channels, k, k), "weight")?) } else { None };
        let bias = if k > 0 && cfg.bias { Some(vb.get(cfg.out_channels, "bias")?) } else { None };
        let filter = if cfg.up || cfg.down { Some(ResampleFilter::load(vb, cfg.resample_filter.len())?) } else { None };
        Ok(Self { weight, bias, filter, cfg })
    }

    /// The layer's configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.cfg
    }

    /// Applies the layer to `x` (`[B, C_in, H, W]`). The weights are cast to `x`'s dtype (a no-op when they
    /// match), so `f32` master weights run in `bf16` for a `bf16` input, as [`crate::Linear`] does.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w_pad = self.cfg.kernel / 2;
        let f_pad = self.filter.as_ref().map(|f| f.default_padding()).unwrap_or(0);
        let weight = match &self.weight {
            Some(w) => Some(w.to_dtype(x.dtype())?),
            None => None,
        };
        let mut x = x.clone();
        match (&weight, &self.filter) {
            (Some(w), Some(f)) if self.cfg.fused_resample && self.cfg.up => {
                x = f.upsample(&x, w_pad + f_pad)?;
                x = functional::conv2d(&x, w, 0, 1, 1)?;
            }
            (Some(w), Some(f)) if self.cfg.fused_resample && self.cfg.down => {
                x = functional::conv2d(&x, w, w_pad + f_pad, 1, 1)?;
                x = f.downsample(&x, 0)?;
            }
            (w, f) => {
                if let Some(f) = f {
                    x = if self.cfg.up { f.upsample(&x, f_pad)? } else { f.downsample(&x, f_pad)? };
                }
                if let Some(w) = w {
                    x = functional::conv2d(&x, w, w_pad, 1, 1)?;
                }
            }
        }
        match &self.bias {
            Some(b) => functional::add_channel_bias(&x, b),
            None => Ok(x),
        }
    }
}
