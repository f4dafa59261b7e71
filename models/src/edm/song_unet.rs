//! EDM's `SongUNet`: the DDPM++ and NCSN++ architectures of Song et al., in NVIDIA's re-implementation
//! (`training/networks.py`), with the same module names, so a state dict loads unchanged.

use boot_sdk::candle::{Result, Tensor};
use boot_sdk::candle_nn::VarBuilder;
use crate::{Conv2d, Conv2dConfig, FourierEmbedding, GroupNorm, LabelEmbedding, Linear, PositionalEmbedding};
use super::unet_block::{UNetBlock, UNetBlockConfig};

use super::config::{DecoderType, EmbeddingType, EncoderType, SongUNetConfig};

/// The noise-level embedding of a SongUNet, already in `[sin | cos]` order (SongUNet swaps the halves of
/// both embedding types).
#[derive(Debug, Clone)]
pub enum NoiseEmbedding {
    /// Sinusoidal, endpoint, `[sin | cos]` (DDPM++).
    Positional(PositionalEmbedding),
    /// Random Fourier features, halves swapped to `[sin | cos]` (NCSN++).
    Fourier(FourierEmbedding),
}

impl NoiseEmbedding {
    /// Embeds noise labels `[N]` into `[N, C]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            NoiseEmbedding::Positional(p) => p.forward(x),
            NoiseEmbedding::Fourier(f) => {
                let e = f.forward(x)?;
                let half = e.dim(1)? / 2;
                Tensor::cat(&[e.narrow(1, half, half)?, e.narrow(1, 0, half)?], 1)
            }
        }
    }
}

/// One entry of the encoder or decoder, in the official execution order.
#[derive(Debug, Clone)]
enum Module {
    Conv(Conv2d),
    Block(Box<UNetBlock>),
    AuxDown(Conv2d),
    AuxSkip(Conv2d),
    AuxResidual(Conv2d),
    AuxUp(Conv2d),
    AuxNorm(GroupNorm),
    AuxConv(Conv2d),
}

/// `SongUNet(x, noise_labels, class_labels)`.
#[derive(Debug, Clone)]
pub struct SongUNet {
    cfg: SongUNetConfig,
    map_noise: NoiseEmbedding,
    map_label: Option<LabelEmbedding>,
    map_augment: Option<Linear>,
    map_layer0: Linear,
    map_layer1: Linear,
    enc: Vec<(String, Module)>,
    dec: Vec<(String, Module)>,
}

impl SongUNet {
    /// Builds the network, reading its tensors from `vb` (keys as in the official state dict).
    pub fn new(vb: VarBuilder, cfg: &SongUNetConfig) -> Result<Self> {
        let c = cfg;
        if c.channel_mult.is_empty() {
            boot_sdk::candle::bail!("SongUNet: channel_mult is empty");
        }
        let emb_channels = c.model_channels * c.channel_mult_emb;
        let noise_channels = c.model_channels * c.channel_mult_noise;
        let block = |cin: usize, cout: usize, up: bool, down: bool, attention: bool| UNetBlockConfig {
            in_channels: cin,
            out_channels: cout,
            emb_channels,
            up,
            down,
            attention,
            num_heads: Some(1),
            channels_per_head: 64,
            skip_scale: 0.5f64.sqrt(),
            eps: 1e-6,
            resample_filter: c.resample_filter.clone(),
            resample_proj: true,
            adaptive_scale: false,
        };
        let conv = |cin: usize, cout: usize, kernel: usize, up: bool, down: bool, fused: bool| Conv2dConfig {
            in_channels: cin,
            out_channels: cout,
            kernel,
            bias: true,
            up,
            down,
            resample_filter: c.resample_filter.clone(),
            fused_resample: fused,
        };

        let map_noise = match c.embedding_type {
            EmbeddingType::Positional => NoiseEmbedding::Positional(PositionalEmbedding::edm_song(noise_channels)),
            EmbeddingType::Fourier => NoiseEmbedding::Fourier(FourierEmbedding::new(vb.pp("map_noise"), noise_channels)?),
        };
        let map_label = if c.label_dim > 0 {
            Some(LabelEmbedding::new(vb.pp("map_label"), c.label_dim, noise_channels, true, (c.label_dim as f64).sqrt())?)
        } else {
            None
        };
        let map_augment = if c.augment_dim > 0 { Some(Linear::new(vb.pp("map_augment"), c.augment_dim, noise_channels, false)?) } else { None };
        let map_layer0 = Linear::new(vb.pp("map_layer0"), noise_channels, emb_channels, true)?;
        let map_layer1 = Linear::new(vb.pp("map_layer1"), emb_channels, emb_channels, true)?;

        // Encoder.
        let venc = vb.pp("enc");
        let mut enc: Vec<(String, Module)> = Vec::new();
        let mut skips: Vec<usize> = Vec::new();
        let (mut cout, mut caux) = (c.in_channels, c.in_channels);
        for (level, &mult) in c.channel_mult.iter().enumerate() {
            let res = c.img_resolution >> level;
            if level == 0 {
                let cin = cout;
                cout = c.model_channels;
                let name = format!("{res}x{res}_conv");
                enc.push((name.clone(), Module::Conv(Conv2d::new(venc.pp(&name), conv(cin, cout, 3, false, false, false))?)));
                skips.push(cout);
            } else {
                let name = format!("{res}x{res}_down");
                enc.push((name.clone(), Module::Block(Box::new(UNetBlock::new(venc.pp(&name), block(cout, cout, false, true, false))?))));
                skips.push(cout);
                if c.encoder_type == EncoderType::Skip {
                    let n1 = format!("{res}x{res}_aux_down");
                    enc.push((n1.clone(), Module::AuxDown(Conv2d::new(venc.pp(&n1), conv(caux, caux, 0, false, true, false))?)));
                    let n2 = format!("{res}x{res}_aux_skip");
                    enc.push((n2.clone(), Module::AuxSkip(Conv2d::new(venc.pp(&n2), conv(caux, cout, 1, false, false, false))?)));
                }
                if c.encoder_type == EncoderType::Residual {
                    let n = format!("{res}x{res}_aux_residual");
                    enc.push((n.clone(), Module::AuxResidual(Conv2d::new(venc.pp(&n), conv(caux, cout, 3, false, true, true))?)));
                    caux = cout;
                }
            }
            for idx in 0..c.num_blocks {
                let cin = cout;
                cout = c.model_channels * mult;
                let attn = c.attn_resolutions.contains(&res);
                let name = format!("{res}x{res}_block{idx}");
                enc.push((name.clone(), Module::Block(Box::new(UNetBlock::new(venc.pp(&name), block(cin, cout, false, false, attn))?))));
                skips.push(cout);
            }
        }

        // Decoder.
        let vdec = vb.pp("dec");
        let mut dec: Vec<(String, Module)> = Vec::new();
        let last = c.channel_mult.len() - 1;
        for (level, &mult) in c.channel_mult.iter().enumerate().rev() {
            let res = c.img_resolution >> level;
            if level == last {
                let n0 = format!("{res}x{res}_in0");
                dec.push((n0.clone(), Module::Block(Box::new(UNetBlock::new(vdec.pp(&n0), block(cout, cout, false, false, true))?))));
                let n1 = format!("{res}x{res}_in1");
                dec.push((n1.clone(), Module::Block(Box::new(UNetBlock::new(vdec.pp(&n1), block(cout, cout, false, false, false))?))));
            } else {
                let n = format!("{res}x{res}_up");
                dec.push((n.clone(), Module::Block(Box::new(UNetBlock::new(vdec.pp(&n), block(cout, cout, true, false, false))?))));
            }
            for idx in 0..=c.num_blocks {
                let skip = skips.pop().ok_or_else(|| boot_sdk::candle::Error::Msg("SongUNet: skip stack underflow".into()))?;
                let cin = cout + skip;
                cout = c.model_channels * mult;
                let attn = idx == c.num_blocks && c.attn_resolutions.contains(&res);
                let name = format!("{res}x{res}_block{idx}");
                dec.push((name.clone(), Module::Block(Box::new(UNetBlock::new(vdec.pp(&name), block(cin, cout, false, false, attn))?))));
            }
            if c.decoder_type == DecoderType::Skip || level == 0 {
                if c.decoder_type == DecoderType::Skip && level < last {
                    let n = format!("{res}x{res}_aux_up");
                    let oc = c.out_channels;
                    dec.push((n.clone(), Module::AuxUp(Conv2d::new(vdec.pp(&n), conv(oc, oc, 0, true, false, false))?)));
                }
                let n = format!("{res}x{res}_aux_norm");
                dec.push((n.clone(), Module::AuxNorm(GroupNorm::edm(vdec.pp(&n), cout, 1e-6)?)));
                let n = format!("{res}x{res}_aux_conv");
                dec.push((n.clone(), Module::AuxConv(Conv2d::new(vdec.pp(&n), conv(cout, c.out_channels, 3, false, false, false))?)));
            }
        }
        Ok(Self { cfg: c.clone(), map_noise, map_label, map_augment, map_layer0, map_layer1, enc, dec })
    }

    /// The constructor arguments.
    pub fn config(&self) -> &SongUNetConfig {
        &self.cfg
    }

    /// The noise embedding (`map_noise`).
    pub fn map_noise(&self) -> &NoiseEmbedding {
        &self.map_noise
    }

    /// Width of the noise embedding, which is where class labels (and a student's extra embeddings) are added.
    pub fn noise_channels(&self) -> usize {
        self.cfg.model_channels * self.cfg.channel_mult_noise
    }

    /// Module names in execution order (`enc.*` then `dec.*`), as the fixtures' `module_order`.
    pub fn module_order(&self) -> Vec<String> {
        let e = self.enc.iter().map(|(n, _)| format!("enc.{n}"));
        let d = self.dec.iter().map(|(n, _)| format!("dec.{n}"));
        e.chain(d).collect()
    }

    /// The mapping network: the embedding vector `[N, emb_channels]` the blocks receive. `class_labels`
    /// (`[N or 1, label_dim]`) is required for conditional nets (`None` = an all-zero row, as the wrappers
    /// pass); `extra` (`[N or 1, noise_channels]`) is added after the label embedding.
    pub fn embedding(&self, noise_labels: &Tensor, class_labels: Option<&Tensor>, augment_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        let mut emb = self.map_noise.forward(noise_labels)?;
        if let Some(ml) = &self.map_label {
            let labels = match class_labels {
                Some(l) => l.clone(),
                None => Tensor::zeros((1, ml.label_dim()), emb.dtype(), emb.device())?,
            };
            emb = emb.broadcast_add(&ml.forward(&labels)?)?;
        }
        if let (Some(ma), Some(a)) = (&self.map_augment, augment_labels) {
            emb = emb.broadcast_add(&ma.forward(a)?)?;
        }
        if let Some(e) = extra {
            emb = emb.broadcast_add(e)?;
        }
        let emb = self.map_layer0.forward(&emb)?.silu()?;
        self.map_layer1.forward(&emb)?.silu()
    }

    /// `F(x, noise_labels, class_labels)`: `x [N, C, H, W]`, `noise_labels [N or 1]`; see
    /// [`SongUNet::embedding`] for the labels and `extra`.
    pub fn forward(&self, x: &Tensor, noise_labels: &Tensor, class_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        let emb = self.embedding(noise_labels, class_labels, None, extra)?;
        self.forward_with_embedding(x, &emb, &mut |_, _| Ok(()))
    }

    /// The UNet body for a given embedding vector; `trace` sees each module's output (for the residual
    /// encoder, `aux_residual`'s own output before the merge), as the fixtures' traces do.
    pub fn forward_with_embedding(&self, x: &Tensor, emb: &Tensor, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let mut x = x.clone();
        let mut aux = x.clone();
        let mut skips: Vec<Tensor> = Vec::new();
        for (name, m) in &self.enc {
            match m {
                Module::AuxDown(c) => {
                    aux = c.forward(&aux)?;
                    trace(name, &aux)?;
                }
                Module::AuxSkip(c) => {
                    let y = c.forward(&aux)?;
                    trace(name, &y)?;
                    x = (x + y)?;
                    if let Some(s) = skips.last_mut() {
                        *s = x.clone();
                    }
                }
                Module::AuxResidual(c) => {
                    let y = c.forward(&aux)?;
                    trace(name, &y)?;
                    x = ((x + y)? / 2f64.sqrt())?;
                    aux = x.clone();
                    if let Some(s) = skips.last_mut() {
                        *s = x.clone();
                    }
                }
                Module::Block(b) => {
                    x = b.forward(&x, emb)?;
                    trace(name, &x)?;
                    skips.push(x.clone());
                }
                Module::Conv(c) => {
                    x = c.forward(&x)?;
                    trace(name, &x)?;
                    skips.push(x.clone());
                }
                Module::AuxUp(_) | Module::AuxNorm(_) | Module::AuxConv(_) => boot_sdk::candle::bail!("SongUNet: decoder module in encoder"),
            }
        }
        let mut out: Option<Tensor> = None;
        let mut tmp: Option<Tensor> = None;
        for (name, m) in &self.dec {
            match m {
                Module::AuxUp(c) => {
                    if let Some(a) = &out {
                        let y = c.forward(a)?;
                        trace(name, &y)?;
                        out = Some(y);
                    }
                }
                Module::AuxNorm(n) => {
                    let y = n.forward(&x)?;
                    trace(name, &y)?;
                    tmp = Some(y);
                }
                Module::AuxConv(c) => {
                    let t = tmp.take().ok_or_else(|| boot_sdk::candle::Error::Msg("SongUNet: aux_conv before aux_norm".into()))?;
                    let y = c.forward(&t.silu()?)?;
                    trace(name, &y)?;
                    out = Some(match out {
                        None => y,
                        Some(a) => (y + a)?,
                    });
                }
                Module::Block(b) => {
                    if x.dim(1)? != b.config().in_channels {
                        let s = skips.pop().ok_or_else(|| boot_sdk::candle::Error::Msg("SongUNet: skip stack underflow".into()))?;
                        x = Tensor::cat(&[&x, &s], 1)?;
                    }
                    x = b.forward(&x, emb)?;
                    trace(name, &x)?;
                }
                _ => boot_sdk::candle::bail!("SongUNet: encoder module in decoder"),
            }
        }
        out.ok_or_else(|| boot_sdk::candle::Error::Msg("SongUNet: no output layer".into()))
    }
}
