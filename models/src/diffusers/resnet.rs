//! diffusers' `ResnetBlock2D` (`models/resnet.py`): the residual block of `UNet2DModel` and
//! `UNet2DConditionModel`, with additive or scale-shift time conditioning and optional in-block
//! up/down-sampling (DeepFloyd IF's resnet resamplers).

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::activation::Activation;
use boot_sdk::ops as functional;
use crate::{Conv2d, Conv2dConfig, GroupNorm, Linear};

/// How the time embedding enters the block (`time_embedding_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeEmbeddingNorm {
    /// `"default"`: `h + time_emb_proj(act(temb))`, then `norm2`.
    Default,
    /// `"scale_shift"`: `norm2(h) * (1 + scale) + shift` with `[scale | shift] = time_emb_proj(act(temb))`.
    ScaleShift,
}

impl TimeEmbeddingNorm {
    /// Parses diffusers' `resnet_time_scale_shift` / `time_embedding_norm` value.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "default" => TimeEmbeddingNorm::Default,
            "scale_shift" => TimeEmbeddingNorm::ScaleShift,
            other => crate::candle::bail!("unsupported time embedding norm `{other}` (expected default or scale_shift)"),
        })
    }
}

/// Options of a [`ResnetBlock2D`], named as diffusers' constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetBlock2DConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Width of the time embedding; `None`: the block takes none (no `time_emb_proj`).
    pub temb_channels: Option<usize>,
    /// Groups of `norm1` (and of `norm2` unless `groups_out` is set).
    pub groups: usize,
    /// Groups of `norm2`.
    pub groups_out: Option<usize>,
    /// Group norm epsilon.
    pub eps: f64,
    /// The nonlinearity (`non_linearity`), also applied to the time embedding.
    pub act: Activation,
    /// How the time embedding enters.
    pub time_embedding_norm: TimeEmbeddingNorm,
    /// Do not apply `act` to the time embedding before `time_emb_proj`.
    pub skip_time_act: bool,
    /// The output is `(shortcut(x) + h) / output_scale_factor`.
    pub output_scale_factor: f64,
    /// Nearest 2x up-sampling after `norm1`/`act` (and of the shortcut input).
    pub up: bool,
    /// 2x2 average-pool down-sampling after `norm1`/`act` (and of the shortcut input).
    pub down: bool,
    /// Force (or forbid) the 1x1 `conv_shortcut`; default: when the channel count changes.
    pub use_in_shortcut: Option<bool>,
    /// Whether `conv_shortcut` has a bias.
    pub conv_shortcut_bias: bool,
}

impl ResnetBlock2DConfig {
    /// diffusers' defaults (`groups = 32`, `eps = 1e-6`, SiLU, default norm) for `in -> out` channels.
    pub fn new(in_channels: usize, out_channels: usize, temb_channels: Option<usize>) -> Self {
        Self {
            in_channels,
            out_channels,
            temb_channels,
            groups: 32,
            groups_out: None,
            eps: 1e-6,
            act: Activation::Silu,
            time_embedding_norm: TimeEmbeddingNorm::Default,
            skip_time_act: false,
            output_scale_factor: 1.0,
            up: false,
            down: false,
            use_in_shortcut: None,
            conv_shortcut_bias: true,
        }
    }
}

/// `ResnetBlock2D`. Keys: `norm1`, `conv1`, `time_emb_proj` (with a time embedding), `norm2`, `conv2`,
/// `conv_shortcut` (1x1, when channels change).
#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    cfg: ResnetBlock2DConfig,
}

impl ResnetBlock2D {
    /// Loads the block's tensors from `vb`.
    pub fn new(vb: VarBuilder, cfg: ResnetBlock2DConfig) -> Result<Self> {
        if cfg.up && cfg.down {
            crate::candle::bail!("ResnetBlock2D: up and down are exclusive");
        }
        let (cin, cout) = (cfg.in_channels, cfg.out_channels);
        let proj_out = match cfg.time_embedding_norm {
            TimeEmbeddingNorm::Default => cout,
            TimeEmbeddingNorm::ScaleShift => 2 * cout,
        };
        let time_emb_proj = match cfg.temb_channels {
            Some(t) => Some(Linear::new(vb.pp("time_emb_proj"), t, proj_out, true)?),
            None => None,
        };
        let shortcut = cfg.use_in_shortcut.unwrap_or(cin != cout);
        let conv_shortcut = if shortcut {
            let mut c = Conv2dConfig::plain(cin, cout, 1);
            c.bias = cfg.conv_shortcut_bias;
            Some(Conv2d::new(vb.pp("conv_shortcut"), c)?)
        } else {
            None
        };
        Ok(Self {
            norm1: GroupNorm::new(vb.pp("norm1"), cin, cfg.groups, cfg.eps)?,
            conv1: Conv2d::new(vb.pp("conv1"), Conv2dConfig::plain(cin, cout, 3))?,
            time_emb_proj,
            norm2: GroupNorm::new(vb.pp("norm2"), cout, cfg.groups_out.unwrap_or(cfg.groups), cfg.eps)?,
            conv2: Conv2d::new(vb.pp("conv2"), Conv2dConfig::plain(cout, cout, 3))?,
            conv_shortcut,
            cfg,
        })
    }

    /// The block's configuration.
    pub fn config(&self) -> &ResnetBlock2DConfig {
        &self.cfg
    }

    /// Applies the block to `x` (`[B, in_channels, H, W]`) with the time embedding `temb`
    /// (`[B, temb_channels]`; ignored by a block built without one).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let act = self.cfg.act;
        let mut h = act.after_group_norm(&self.norm1, x, None)?;
        let mut input = x.clone();
        if self.cfg.up {
            h = functional::upsample_nearest2x(&h)?;
            input = functional::upsample_nearest2x(&input)?;
        } else if self.cfg.down {
            h = functional::avg_pool2x(&h)?;
            input = functional::avg_pool2x(&input)?;
        }
        h = self.conv1.forward(&h)?;
        let temb = match (&self.time_emb_proj, temb) {
            (Some(p), Some(t)) => {
                let t = if self.cfg.skip_time_act { t.clone() } else { act.forward(t)? };
                // In the body's dtype: a half-precision body gets an f32 embedding (`crate::embedding_dtype`).
                Some(p.forward(&t)?.to_dtype(h.dtype())?.unsqueeze(2)?.unsqueeze(3)?)
            }
            (Some(_), None) => crate::candle::bail!("ResnetBlock2D: the block has a time embedding projection, but no embedding was given"),
            (None, _) => None,
        };
        h = match (self.cfg.time_embedding_norm, temb) {
            (TimeEmbeddingNorm::Default, Some(t)) => act.after_group_norm(&self.norm2, &h.broadcast_add(&t)?, None)?,
            (TimeEmbeddingNorm::ScaleShift, Some(t)) => {
                let c = self.cfg.out_channels;
                let (scale, shift) = (t.narrow(1, 0, c)?, t.narrow(1, c, c)?);
                act.after_group_norm(&self.norm2, &h, Some((&scale, &shift)))?
            }
            (_, None) => act.after_group_norm(&self.norm2, &h, None)?,
        };
        h = self.conv2.forward(&h)?;
        if let Some(s) = &self.conv_shortcut {
            input = s.forward(&input)?;
        }
        let out = (input + h)?;
        if self.cfg.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out / self.cfg.output_scale_factor
        }
    }
}

/// The resnet settings a UNet block passes to every `ResnetBlock2D` it builds (`resnet_eps`,
/// `resnet_groups`, `resnet_act_fn`, `resnet_time_scale_shift`, `output_scale_factor`, `skip_time_act`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetOptions {
    /// Group norm epsilon.
    pub eps: f64,
    /// Group norm groups.
    pub groups: usize,
    /// Nonlinearity.
    pub act: Activation,
    /// How the time embedding enters.
    pub time_embedding_norm: TimeEmbeddingNorm,
    /// Output scale factor of the resnets (and of the block's spatial attention layers).
    pub output_scale_factor: f64,
    /// The time embedding enters `time_emb_proj` without the activation (IF stage II's `resnet_skip_time_act`).
    pub skip_time_act: bool,
}

impl ResnetOptions {
    /// The configuration of a resnet `in_channels -> out_channels` with these settings.
    pub fn block(&self, in_channels: usize, out_channels: usize, temb_channels: Option<usize>) -> ResnetBlock2DConfig {
        ResnetBlock2DConfig {
            groups: self.groups,
            eps: self.eps,
            act: self.act,
            time_embedding_norm: self.time_embedding_norm,
            output_scale_factor: self.output_scale_factor,
            skip_time_act: self.skip_time_act,
            ..ResnetBlock2DConfig::new(in_channels, out_channels, temb_channels)
        }
    }
}
