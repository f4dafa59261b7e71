//! The benchmarked architectures, walked layer by layer in the plugins' construction order: every tensor of
//! the state dict (name, shape, how to draw it) and the model FLOPs of one forward pass per sample.
//!
//! The same walk writes the random-weight checkpoint the plugin then loads strictly, so a walk that
//! disagreed with the plugin's network (a missing, extra or mis-shaped tensor) stops the benchmark: the FLOP
//! count is of the network that runs.
//!
//! FLOPs (multiply and add = 2): convolution `2 Cin Cout k^2 Hout Wout`, linear `2 in out`, attention
//! `4 N^2 C` (`Q K^T` and `A V` over `N` pixels and `C` channels, all heads), the 1x1 qkv / projection
//! convolutions as convolutions. Normalisation, activations, resampling filters, softmax and the
//! element-wise arithmetic are left out (well under 1% here).

use std::collections::BTreeMap;

use serde::Serialize;

/// How a tensor is drawn (the scheme of the EDM parity fixtures: nothing is zero).
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Convolution / linear weight: `N(0, 1) / sqrt(fan_in)`.
    Weight {
        /// Inputs per output.
        fan_in: usize,
    },
    /// Bias: `0.05 N(0, 1)`.
    Bias,
    /// Normalisation scale: `1 + 0.1 N(0, 1)`.
    NormWeight,
    /// Normalisation shift: `0.1 N(0, 1)`.
    NormBias,
    /// Embedding table row: `N(0, 1)`.
    Table,
    /// EDM's FIR resampling filter `outer(f, f) / sum(f)^2` of these taps (a constant buffer).
    Filter(Vec<f64>),
}

/// One tensor of the state dict.
#[derive(Debug, Clone)]
pub struct Param {
    /// State-dict key.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// How its values are drawn.
    pub init: Init,
}

impl Param {
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A network's tensors and per-sample forward FLOPs.
#[derive(Debug, Clone, Default)]
pub struct Net {
    /// State-dict tensors in construction order.
    pub params: Vec<Param>,
    /// FLOPs of one forward pass of one sample, by kind (`conv`, `linear`, `attention`).
    pub flops: BTreeMap<&'static str, f64>,
}

impl Net {
    /// Total forward FLOPs per sample.
    pub fn forward_flops(&self) -> f64 {
        self.flops.values().sum()
    }

    /// Number of values in the state dict (parameters and buffers).
    pub fn numel(&self) -> usize {
        self.params.iter().map(Param::numel).sum()
    }

    /// Number of trainable values (buffers excluded).
    pub fn trainable(&self) -> usize {
        self.params.iter().filter(|p| !matches!(p.init, Init::Filter(_))).map(Param::numel).sum()
    }

    fn add(&mut self, kind: &'static str, f: f64) {
        *self.flops.entry(kind).or_default() += f;
    }

    fn push(&mut self, name: String, shape: Vec<usize>, init: Init) {
        self.params.push(Param { name, shape, init });
    }

    fn norm(&mut self, name: &str, c: usize) {
        self.push(format!("{name}.weight"), vec![c], Init::NormWeight);
        self.push(format!("{name}.bias"), vec![c], Init::NormBias);
    }

    fn linear(&mut self, name: &str, cin: usize, cout: usize, bias: bool) {
        self.push(format!("{name}.weight"), vec![cout, cin], Init::Weight { fan_in: cin });
        if bias {
            self.push(format!("{name}.bias"), vec![cout], Init::Bias);
        }
        self.add("linear", 2.0 * (cin * cout) as f64);
    }

    /// A `k x k` convolution (`Conv2d` weight `[cout, cin, k, k]`) producing `res x res`.
    fn conv(&mut self, name: &str, cin: usize, cout: usize, k: usize, res: usize) {
        self.push(format!("{name}.weight"), vec![cout, cin, k, k], Init::Weight { fan_in: cin * k * k });
        self.push(format!("{name}.bias"), vec![cout], Init::Bias);
        self.add("conv", 2.0 * (cin * cout * k * k * res * res) as f64);
    }

    /// A kernel-1 `Conv1d` (weight `[cout, cin, 1]`) over `n` positions.
    fn conv1d(&mut self, name: &str, cin: usize, cout: usize, n: usize) {
        self.push(format!("{name}.weight"), vec![cout, cin, 1], Init::Weight { fan_in: cin });
        self.push(format!("{name}.bias"), vec![cout], Init::Bias);
        self.add("conv", 2.0 * (cin * cout * n) as f64);
    }

    fn attention_core(&mut self, c: usize, res: usize) {
        let n = (res * res) as f64;
        self.add("attention", 4.0 * n * n * c as f64);
    }

    /// Prefixes every key with `prefix.`.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for p in &mut self.params {
            p.name = format!("{prefix}.{}", p.name);
        }
        self
    }
}

/// guided-diffusion's `UNetModel` as the `adm` teacher builds it (flags of `create_model`).
#[derive(Debug, Clone, Serialize)]
pub struct AdmArch {
    /// `--image_size`.
    pub image_size: usize,
    /// Base channels (`--num_channels`).
    pub num_channels: usize,
    /// Residual blocks per level.
    pub num_res_blocks: usize,
    /// Channel multipliers per level.
    pub channel_mult: Vec<usize>,
    /// Attention **resolutions** (`--attention_resolutions`).
    pub attention_resolutions: Vec<usize>,
    /// Channels per attention head.
    pub num_head_channels: usize,
    /// FiLM conditioning in residual blocks.
    pub use_scale_shift_norm: bool,
    /// Residual blocks for up/down-sampling.
    pub resblock_updown: bool,
    /// `QKVAttention` (true) or the legacy order.
    pub use_new_attention_order: bool,
    /// `2 C` outputs.
    pub learn_sigma: bool,
    /// Real classes.
    pub num_classes: usize,
    /// An extra label-embedding row for the null class (`null_class = "extra-row"`).
    pub null_row: bool,
}

impl AdmArch {
    /// The network's tensors and FLOPs (`UNetModel.__init__` / `forward` order).
    pub fn net(&self) -> Net {
        let mut n = Net::default();
        let mc = self.num_channels;
        let ted = 4 * mc;
        let out_channels = if self.learn_sigma { 6 } else { 3 };
        let attn_ds: Vec<usize> = self.attention_resolutions.iter().map(|r| self.image_size / r).collect();
        let scale_shift = self.use_scale_shift_norm;
        n.linear("time_embed.0", mc, ted, true);
        n.linear("time_embed.2", ted, ted, true);
        n.push("label_emb.weight".into(), vec![self.num_classes + usize::from(self.null_row), ted], Init::Table);

        let resblock = |n: &mut Net, name: &str, cin: usize, cout: usize, res_out: usize| {
            n.norm(&format!("{name}.in_layers.0"), cin);
            n.conv(&format!("{name}.in_layers.2"), cin, cout, 3, res_out);
            n.linear(&format!("{name}.emb_layers.1"), ted, if scale_shift { 2 * cout } else { cout }, true);
            n.norm(&format!("{name}.out_layers.0"), cout);
            n.conv(&format!("{name}.out_layers.3"), cout, cout, 3, res_out);
            if cin != cout {
                n.conv(&format!("{name}.skip_connection"), cin, cout, 1, res_out);
            }
        };
        let attention = |n: &mut Net, name: &str, c: usize, res: usize| {
            n.norm(&format!("{name}.norm"), c);
            n.conv1d(&format!("{name}.qkv"), c, 3 * c, res * res);
            n.conv1d(&format!("{name}.proj_out"), c, c, res * res);
            n.attention_core(c, res);
        };

        let mut res = self.image_size;
        let mut ch = self.channel_mult[0] * mc;
        let input_ch = ch;
        n.conv("input_blocks.0.0", 3, ch, 3, res);
        let mut chans = vec![ch];
        let mut ds = 1;
        let mut blocks = 1;
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            for _ in 0..self.num_res_blocks {
                let out = mult * mc;
                resblock(&mut n, &format!("input_blocks.{blocks}.0"), ch, out, res);
                ch = out;
                if attn_ds.contains(&ds) {
                    attention(&mut n, &format!("input_blocks.{blocks}.1"), ch, res);
                }
                blocks += 1;
                chans.push(ch);
            }
            if level != self.channel_mult.len() - 1 {
                res /= 2;
                if self.resblock_updown {
                    resblock(&mut n, &format!("input_blocks.{blocks}.0"), ch, ch, res);
                } else {
                    n.conv(&format!("input_blocks.{blocks}.0.op"), ch, ch, 3, res);
                }
                blocks += 1;
                chans.push(ch);
                ds *= 2;
            }
        }
        resblock(&mut n, "middle_block.0", ch, ch, res);
        attention(&mut n, "middle_block.1", ch, res);
        resblock(&mut n, "middle_block.2", ch, ch, res);
        let mut out_blocks = 0;
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            for i in 0..=self.num_res_blocks {
                let ich = chans.pop().expect("skip channels");
                let out = mult * mc;
                let name = format!("output_blocks.{out_blocks}");
                resblock(&mut n, &format!("{name}.0"), ch + ich, out, res);
                ch = out;
                let mut layers = 1;
                if attn_ds.contains(&ds) {
                    attention(&mut n, &format!("{name}.1"), ch, res);
                    layers += 1;
                }
                if level > 0 && i == self.num_res_blocks {
                    res *= 2;
                    if self.resblock_updown {
                        resblock(&mut n, &format!("{name}.{layers}"), ch, ch, res);
                    } else {
                        n.conv(&format!("{name}.{layers}.conv"), ch, ch, 3, res);
                    }
                    ds /= 2;
                }
                out_blocks += 1;
            }
        }
        n.norm("out.0", ch);
        n.conv("out.2", input_ch, out_channels, 3, res);
        n
    }

    /// FLOPs the `adm-student` adds per forward (target-time and, for CFG students, `w` embeddings).
    pub fn student_extra_flops(&self, w_conditioned: bool) -> f64 {
        let (mc, ted) = (self.num_channels, 4 * self.num_channels);
        2.0 * (mc * ted) as f64 * if w_conditioned { 2.0 } else { 1.0 }
    }
}

/// EDM's `SongUNet` (standard encoder and decoder, positional noise embedding: DDPM++) inside a wrapper.
#[derive(Debug, Clone, Serialize)]
pub struct SongArch {
    /// `img_resolution`.
    pub img_resolution: usize,
    /// Base channels.
    pub model_channels: usize,
    /// Channel multipliers per resolution.
    pub channel_mult: Vec<usize>,
    /// Embedding width multiplier.
    pub channel_mult_emb: usize,
    /// Blocks per resolution.
    pub num_blocks: usize,
    /// Resolutions with attention.
    pub attn_resolutions: Vec<usize>,
    /// Augmentation label width (EDM's CIFAR-10 nets: 9; never fed in sampling).
    pub augment_dim: usize,
    /// FIR taps.
    pub resample_filter: Vec<f64>,
    /// Wrapper class: `VPPrecond` or `EDMPrecond`.
    pub precond: String,
}

impl SongArch {
    /// The network description the `edm` teacher reads (`{"class_name", "constructor_kwargs"}`, as
    /// `scripts/convert_edm_pkl.py` writes it).
    pub fn network_json(&self) -> serde_json::Value {
        let mut kwargs = serde_json::json!({
            "img_resolution": self.img_resolution,
            "img_channels": 3,
            "label_dim": 0,
            "use_fp16": false,
            "model_type": "SongUNet",
            "augment_dim": self.augment_dim,
            "model_channels": self.model_channels,
            "channel_mult": self.channel_mult,
            "channel_mult_emb": self.channel_mult_emb,
            "num_blocks": self.num_blocks,
            "attn_resolutions": self.attn_resolutions,
            "dropout": 0.13,
            "embedding_type": "positional",
            "channel_mult_noise": 1,
            "encoder_type": "standard",
            "decoder_type": "standard",
            "resample_filter": self.resample_filter,
        });
        let extra = match self.precond.as_str() {
            "VPPrecond" => serde_json::json!({ "beta_d": 19.9, "beta_min": 0.1, "M": 1000, "epsilon_t": 1e-5 }),
            _ => serde_json::json!({ "sigma_min": 0, "sigma_max": "inf", "sigma_data": 0.5 }),
        };
        if let (Some(k), Some(e)) = (kwargs.as_object_mut(), extra.as_object()) {
            k.extend(e.clone());
        }
        serde_json::json!({ "class_name": self.precond, "constructor_kwargs": kwargs })
    }

    /// Width of the noise embedding (where a student's target-time embedding is added).
    pub fn noise_channels(&self) -> usize {
        self.model_channels
    }

    /// The wrapper's state dict (network keys under `model.`) and FLOPs.
    pub fn net(&self) -> Net {
        let mut n = Net::default();
        let mc = self.model_channels;
        let emb = mc * self.channel_mult_emb;
        let noise = self.noise_channels();
        let filter = self.resample_filter.clone();
        if self.augment_dim > 0 {
            n.push("map_augment.weight".into(), vec![noise, self.augment_dim], Init::Weight { fan_in: self.augment_dim });
        }
        n.linear("map_layer0", noise, emb, true);
        n.linear("map_layer1", emb, emb, true);
        // UNetBlock(cin, cout, up, down, attention) producing `res x res`, SongUNet's block settings
        // (one head, resample_proj, additive embedding).
        let block = |n: &mut Net, name: &str, cin: usize, cout: usize, res: usize, resample: bool, attn: bool| {
            n.norm(&format!("{name}.norm0"), cin);
            n.conv(&format!("{name}.conv0"), cin, cout, 3, res);
            if resample {
                n.push(format!("{name}.conv0.resample_filter"), vec![1, 1, filter.len(), filter.len()], Init::Filter(filter.clone()));
            }
            n.linear(&format!("{name}.affine"), emb, cout, true);
            n.norm(&format!("{name}.norm1"), cout);
            n.conv(&format!("{name}.conv1"), cout, cout, 3, res);
            if cin != cout || resample {
                n.conv(&format!("{name}.skip"), cin, cout, 1, res);
                if resample {
                    n.push(format!("{name}.skip.resample_filter"), vec![1, 1, filter.len(), filter.len()], Init::Filter(filter.clone()));
                }
            }
            if attn {
                n.norm(&format!("{name}.norm2"), cout);
                n.conv(&format!("{name}.qkv"), cout, 3 * cout, 1, res);
                n.conv(&format!("{name}.proj"), cout, cout, 1, res);
                n.attention_core(cout, res);
            }
        };
        let mut skips = Vec::new();
        let mut cout = 3;
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            let res = self.img_resolution >> level;
            if level == 0 {
                n.conv(&format!("enc.{res}x{res}_conv"), cout, mc, 3, res);
                cout = mc;
            } else {
                block(&mut n, &format!("enc.{res}x{res}_down"), cout, cout, res, true, false);
            }
            skips.push(cout);
            for idx in 0..self.num_blocks {
                let cin = cout;
                cout = mc * mult;
                block(&mut n, &format!("enc.{res}x{res}_block{idx}"), cin, cout, res, false, self.attn_resolutions.contains(&res));
                skips.push(cout);
            }
        }
        let last = self.channel_mult.len() - 1;
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            let res = self.img_resolution >> level;
            if level == last {
                block(&mut n, &format!("dec.{res}x{res}_in0"), cout, cout, res, false, true);
                block(&mut n, &format!("dec.{res}x{res}_in1"), cout, cout, res, false, false);
            } else {
                block(&mut n, &format!("dec.{res}x{res}_up"), cout, cout, res, true, false);
            }
            for idx in 0..=self.num_blocks {
                let cin = cout + skips.pop().expect("skip channels");
                cout = mc * mult;
                let attn = idx == self.num_blocks && self.attn_resolutions.contains(&res);
                block(&mut n, &format!("dec.{res}x{res}_block{idx}"), cin, cout, res, false, attn);
            }
            if level == 0 {
                n.norm(&format!("dec.{res}x{res}_aux_norm"), cout);
                n.conv(&format!("dec.{res}x{res}_aux_conv"), cout, 3, 3, res);
            }
        }
        n.prefixed("model")
    }

    /// FLOPs the `edm-student` adds per forward (target-time embedding; `w` embedding for CFG students).
    pub fn student_extra_flops(&self, w_conditioned: bool) -> f64 {
        let c = self.noise_channels();
        2.0 * (c * c) as f64 * if w_conditioned { 2.0 } else { 1.0 }
    }
}

/// Either benchmarked family.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Arch {
    /// ImageNet ADM (plugins/imagenet).
    Adm(AdmArch),
    /// EDM SongUNet (plugins/edm).
    Song(SongArch),
}

impl Arch {
    /// The teacher network's tensors and FLOPs.
    pub fn net(&self) -> Net {
        match self {
            Arch::Adm(a) => a.net(),
            Arch::Song(s) => s.net(),
        }
    }

    /// FLOPs the student adds to a forward pass of the teacher's network.
    pub fn student_extra_flops(&self, w_conditioned: bool) -> f64 {
        match self {
            Arch::Adm(a) => a.student_extra_flops(w_conditioned),
            Arch::Song(s) => s.student_extra_flops(w_conditioned),
        }
    }

    /// `[C, H, W]` of a sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        match self {
            Arch::Adm(a) => [3, a.image_size, a.image_size],
            Arch::Song(s) => [3, s.img_resolution, s.img_resolution],
        }
    }
}
