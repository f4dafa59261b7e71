//! EDM's `DhariwalUNet`: the ADM architecture of Dhariwal & Nichol in NVIDIA's re-implementation
//! (`training/networks.py`), with the same module names, so a state dict loads unchanged.

use boot_sdk::candle::{Result, Tensor};
use boot_sdk::candle_nn::VarBuilder;
use crate::{Conv2d, Conv2dConfig, GroupNorm, LabelEmbedding, Linear, PositionalEmbedding};
use super::unet_block::{UNetBlock, UNetBlockConfig};

use super::config::DhariwalUNetConfig;

#[derive(Debug, Clone)]
enum Module {
    Conv(Conv2d),
    Block(Box<UNetBlock>),
}

/// `DhariwalUNet(x, noise_labels, class_labels)`.
#[derive(Debug, Clone)]
pub struct DhariwalUNet {
    cfg: DhariwalUNetConfig,
    map_noise: PositionalEmbedding,
    map_augment: Option<Linear>,
    map_layer0: Linear,
    map_layer1: Linear,
    map_label: Option<LabelEmbedding>,
    enc: Vec<(String, Module)>,
    dec: Vec<(String, UNetBlock)>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
}

impl DhariwalUNet {
    /// Builds the network, reading its tensors from `vb` (keys as in the official state dict).
    pub fn new(vb: VarBuilder, cfg: &DhariwalUNetConfig) -> Result<Self> {
        let c = cfg;
        if c.channel_mult.is_empty() {
            boot_sdk::candle::bail!("DhariwalUNet: channel_mult is empty");
        }
        let emb_channels = c.model_channels * c.channel_mult_emb;
        let block = |cin: usize, cout: usize, up: bool, down: bool, attention: bool| UNetBlockConfig {
            in_channels: cin,
            out_channels: cout,
            emb_channels,
            up,
            down,
            attention,
            num_heads: None,
            channels_per_head: 64,
            skip_scale: 1.0,
            eps: 1e-5,
            resample_filter: vec![1.0, 1.0],
            resample_proj: false,
            adaptive_scale: true,
        };
        let map_noise = PositionalEmbedding::edm_dhariwal(c.model_channels);
        let map_augment = if c.augment_dim > 0 { Some(Linear::new(vb.pp("map_augment"), c.augment_dim, c.model_channels, false)?) } else { None };
        let map_layer0 = Linear::new(vb.pp("map_layer0"), c.model_channels, emb_channels, true)?;
        let map_layer1 = Linear::new(vb.pp("map_layer1"), emb_channels, emb_channels, true)?;
        let map_label = if c.label_dim > 0 { Some(LabelEmbedding::new(vb.pp("map_label"), c.label_dim, emb_channels, false, 1.0)?) } else { None };

        let venc = vb.pp("enc");
        let mut enc = Vec::new();
        let mut skips = Vec::new();
        let mut cout = c.in_channels;
        for (level, &mult) in c.channel_mult.iter().enumerate() {
            let res = c.img_resolution >> level;
            if level == 0 {
                let cin = cout;
                cout = c.model_channels * mult;
                let name = format!("{res}x{res}_conv");
                enc.push((name.clone(), Module::Conv(Conv2d::new(venc.pp(&name), Conv2dConfig::plain(cin, cout, 3))?)));
            } else {
                let name = format!("{res}x{res}_down");
                enc.push((name.clone(), Module::Block(Box::new(UNetBlock::new(venc.pp(&name), block(cout, cout, false, true, false))?))));
            }
            skips.push(cout);
            for idx in 0..c.num_blocks {
                let cin = cout;
                cout = c.model_channels * mult;
                let name = format!("{res}x{res}_block{idx}");
                let attn = c.attn_resolutions.contains(&res);
                enc.push((name.clone(), Module::Block(Box::new(UNetBlock::new(venc.pp(&name), block(cin, cout, false, false, attn))?))));
                skips.push(cout);
            }
        }

        let vdec = vb.pp("dec");
        let mut dec = Vec::new();
        let last = c.channel_mult.len() - 1;
        for (level, &mult) in c.channel_mult.iter().enumerate().rev() {
            let res = c.img_resolution >> level;
            if level == last {
                let n0 = format!("{res}x{res}_in0");
                dec.push((n0.clone(), UNetBlock::new(vdec.pp(&n0), block(cout, cout, false, false, true))?));
                let n1 = format!("{res}x{res}_in1");
                dec.push((n1.clone(), UNetBlock::new(vdec.pp(&n1), block(cout, cout, false, false, false))?));
            } else {
                let n = format!("{res}x{res}_up");
                dec.push((n.clone(), UNetBlock::new(vdec.pp(&n), block(cout, cout, true, false, false))?));
            }
            for idx in 0..=c.num_blocks {
                let skip = skips.pop().ok_or_else(|| boot_sdk::candle::Error::Msg("DhariwalUNet: skip stack underflow".into()))?;
                let cin = cout + skip;
                cout = c.model_channels * mult;
                let name = format!("{res}x{res}_block{idx}");
                let attn = c.attn_resolutions.contains(&res);
                dec.push((name.clone(), UNetBlock::new(vdec.pp(&name), block(cin, cout, false, false, attn))?));
            }
        }
        let out_norm = GroupNorm::edm(vb.pp("out_norm"), cout, 1e-5)?;
        let out_conv = Conv2d::new(vb.pp("out_conv"), Conv2dConfig::plain(cout, c.out_channels, 3))?;
        Ok(Self { cfg: c.clone(), map_noise, map_augment, map_layer0, map_layer1, map_label, enc, dec, out_norm, out_conv })
    }

    /// The constructor arguments.
    pub fn config(&self) -> &DhariwalUNetConfig {
        &self.cfg
    }

    /// The noise embedding (`map_noise`).
    pub fn map_noise(&self) -> &PositionalEmbedding {
        &self.map_noise
    }

    /// Width of the embedding vector, which is where class labels (and a student's extra embeddings) are
    /// added.
    pub fn emb_channels(&self) -> usize {
        self.cfg.model_channels * self.cfg.channel_mult_emb
    }

    /// Module names in execution order (`enc.*` then `dec.*`), as the fixtures' `module_order`.
    pub fn module_order(&self) -> Vec<String> {
        let e = self.enc.iter().map(|(n, _)| format!("enc.{n}"));
        let d = self.dec.iter().map(|(n, _)| format!("dec.{n}"));
        e.chain(d).collect()
    }

    /// The mapping network: the embedding vector `[N, emb_channels]` the blocks receive. `class_labels`
    /// (`[N or 1, label_dim]`; `None` = an all-zero row, which is exactly unconditional here);
    /// `extra` (`[N or 1, emb_channels]`) is added after the label embedding.
    pub fn embedding(&self, noise_labels: &Tensor, class_labels: Option<&Tensor>, augment_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        let mut emb = self.map_noise.forward(noise_labels)?;
        if let (Some(ma), Some(a)) = (&self.map_augment, augment_labels) {
            emb = emb.broadcast_add(&ma.forward(a)?)?;
        }
        emb = self.map_layer0.forward(&emb)?.silu()?;
        emb = self.map_layer1.forward(&emb)?;
        if let (Some(ml), Some(l)) = (&self.map_label, class_labels) {
            emb = emb.broadcast_add(&ml.forward(l)?)?;
        }
        if let Some(e) = extra {
            emb = emb.broadcast_add(e)?;
        }
        emb.silu()
    }

    /// `F(x, noise_labels, class_labels)`; see [`DhariwalUNet::embedding`].
    pub fn forward(&self, x: &Tensor, noise_labels: &Tensor, class_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        let emb = self.embedding(noise_labels, class_labels, None, extra)?;
        self.forward_with_embedding(x, &emb, &mut |_, _| Ok(()))
    }

    /// The UNet body for a given embedding vector; `trace` sees each module's output.
    pub fn forward_with_embedding(&self, x: &Tensor, emb: &Tensor, trace: &mut dyn FnMut(&str, &Tensor) -> Result<()>) -> Result<Tensor> {
        let mut x = x.clone();
        let mut skips = Vec::new();
        for (name, m) in &self.enc {
            x = match m {
                Module::Conv(c) => c.forward(&x)?,
                Module::Block(b) => b.forward(&x, emb)?,
            };
            trace(name, &x)?;
            skips.push(x.clone());
        }
        for (name, b) in &self.dec {
            if x.dim(1)? != b.config().in_channels {
                let s = skips.pop().ok_or_else(|| boot_sdk::candle::Error::Msg("DhariwalUNet: skip stack underflow".into()))?;
                x = Tensor::cat(&[&x, &s], 1)?;
            }
            x = b.forward(&x, emb)?;
            trace(name, &x)?;
        }
        self.out_conv.forward(&self.out_norm.forward_modulated(&x, None, true)?)
    }
}
