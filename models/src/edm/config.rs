//! The network description: a JSON file in the layout of NVIDIA's pickles as `scripts/convert_edm_pkl.py`
//! writes it (and as the parity fixtures use): `{"class_name": ..., "constructor_kwargs": {...}}`.
//!
//! `class_name` is a wrapper (`EDMPrecond`, `VPPrecond`, `VEPrecond`; the state dict then has every network
//! key under `model.`) or a bare network (`SongUNet`, `DhariwalUNet`; keys unprefixed, and the
//! preconditioning comes from the teacher config). `constructor_kwargs` are exactly the arguments the
//! official constructor got; missing ones take the official defaults, unknown ones are an error (as they are
//! to the Python constructor). The JSON string `"inf"` stands for `float('inf')`. The file is read by
//! [`crate::config`]: other top-level keys than these and the converter's `source` are listed in a warning.

use std::path::Path;

use boot_sdk::serde_json::{self, Map, Value};
use boot_sdk::InputError;
use serde::{Deserialize, Deserializer};

fn inf_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        N(f64),
        S(String),
    }
    match F::deserialize(d)? {
        F::N(v) => Ok(v),
        F::S(s) if s == "inf" || s == "Infinity" => Ok(f64::INFINITY),
        F::S(s) if s == "-inf" || s == "-Infinity" => Ok(f64::NEG_INFINITY),
        F::S(s) => Err(serde::de::Error::custom(format!("expected a number or \"inf\", found \"{s}\""))),
    }
}

/// Timestep embedding of a SongUNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingType {
    /// Sinusoidal (DDPM++).
    Positional,
    /// Random Fourier features (NCSN++).
    Fourier,
}

/// Encoder variant of a SongUNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderType {
    /// Plain (DDPM++).
    Standard,
    /// Input pyramid added through 1x1 convolutions.
    Skip,
    /// Input pyramid through fused down-sampling convolutions (NCSN++).
    Residual,
}

/// Decoder variant of a SongUNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderType {
    /// Output from the last level only.
    Standard,
    /// Outputs of every level summed through up-sampling.
    Skip,
}

/// `SongUNet` constructor arguments (official defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SongUNetConfig {
    /// Image resolution at input and output.
    pub img_resolution: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of class labels, 0 = unconditional.
    #[serde(default)]
    pub label_dim: usize,
    /// Augmentation label width, 0 = none.
    #[serde(default)]
    pub augment_dim: usize,
    /// Base channel count.
    #[serde(default = "d128")]
    pub model_channels: usize,
    /// Channel multiplier per resolution.
    #[serde(default = "d1222")]
    pub channel_mult: Vec<usize>,
    /// Embedding width multiplier.
    #[serde(default = "d4")]
    pub channel_mult_emb: usize,
    /// Residual blocks per resolution.
    #[serde(default = "d4")]
    pub num_blocks: usize,
    /// Resolutions with self-attention.
    #[serde(default = "d16")]
    pub attn_resolutions: Vec<usize>,
    /// Dropout (training only; unused here).
    #[serde(default = "d01")]
    pub dropout: f64,
    /// Label dropout (training only; unused here).
    #[serde(default)]
    pub label_dropout: f64,
    /// Timestep embedding.
    #[serde(default = "positional")]
    pub embedding_type: EmbeddingType,
    /// Noise embedding width multiplier.
    #[serde(default = "d1")]
    pub channel_mult_noise: usize,
    /// Encoder variant.
    #[serde(default = "standard_enc")]
    pub encoder_type: EncoderType,
    /// Decoder variant.
    #[serde(default = "standard_dec")]
    pub decoder_type: DecoderType,
    /// FIR taps for resampling.
    #[serde(default = "d11")]
    pub resample_filter: Vec<f64>,
}

/// `DhariwalUNet` constructor arguments (official defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhariwalUNetConfig {
    /// Image resolution at input and output.
    pub img_resolution: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of class labels, 0 = unconditional.
    #[serde(default)]
    pub label_dim: usize,
    /// Augmentation label width, 0 = none.
    #[serde(default)]
    pub augment_dim: usize,
    /// Base channel count.
    #[serde(default = "d192")]
    pub model_channels: usize,
    /// Channel multiplier per resolution.
    #[serde(default = "d1234")]
    pub channel_mult: Vec<usize>,
    /// Embedding width multiplier.
    #[serde(default = "d4")]
    pub channel_mult_emb: usize,
    /// Residual blocks per resolution.
    #[serde(default = "d3")]
    pub num_blocks: usize,
    /// Resolutions with self-attention.
    #[serde(default = "d32_16_8")]
    pub attn_resolutions: Vec<usize>,
    /// Dropout (training only; unused here).
    #[serde(default = "d01")]
    pub dropout: f64,
    /// Label dropout (training only; unused here).
    #[serde(default)]
    pub label_dropout: f64,
}

fn d1() -> usize {
    1
}
fn d3() -> usize {
    3
}
fn d4() -> usize {
    4
}
fn d128() -> usize {
    128
}
fn d192() -> usize {
    192
}
fn d1222() -> Vec<usize> {
    vec![1, 2, 2, 2]
}
fn d1234() -> Vec<usize> {
    vec![1, 2, 3, 4]
}
fn d16() -> Vec<usize> {
    vec![16]
}
fn d32_16_8() -> Vec<usize> {
    vec![32, 16, 8]
}
fn d01() -> f64 {
    0.10
}
fn d11() -> Vec<f64> {
    vec![1.0, 1.0]
}
fn positional() -> EmbeddingType {
    EmbeddingType::Positional
}
fn standard_enc() -> EncoderType {
    EncoderType::Standard
}
fn standard_dec() -> DecoderType {
    DecoderType::Standard
}

/// The network architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchConfig {
    /// DDPM++ / NCSN++.
    Song(SongUNetConfig),
    /// ADM.
    Dhariwal(DhariwalUNetConfig),
}

impl ArchConfig {
    /// Number of class labels (0 = unconditional).
    pub fn label_dim(&self) -> usize {
        match self {
            ArchConfig::Song(c) => c.label_dim,
            ArchConfig::Dhariwal(c) => c.label_dim,
        }
    }
    /// `[C, H, W]` of the network's input.
    pub fn input_shape(&self) -> [usize; 3] {
        match self {
            ArchConfig::Song(c) => [c.in_channels, c.img_resolution, c.img_resolution],
            ArchConfig::Dhariwal(c) => [c.in_channels, c.img_resolution, c.img_resolution],
        }
    }
    /// The official class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            ArchConfig::Song(_) => "SongUNet",
            ArchConfig::Dhariwal(_) => "DhariwalUNet",
        }
    }
}

/// Preconditioning hyper-parameters, as the official wrappers take them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PrecondConfig {
    /// `EDMPrecond`.
    Edm {
        /// Smallest supported sigma (default 0).
        #[serde(default, deserialize_with = "inf_f64")]
        sigma_min: f64,
        /// Largest supported sigma (default inf).
        #[serde(default = "inf", deserialize_with = "inf_f64")]
        sigma_max: f64,
        /// Expected data standard deviation (default 0.5).
        #[serde(default = "half")]
        sigma_data: f64,
    },
    /// `VPPrecond`.
    Vp {
        /// Extent of the noise schedule (default 19.9).
        #[serde(default = "beta_d")]
        beta_d: f64,
        /// Initial slope (default 0.1).
        #[serde(default = "beta_min")]
        beta_min: f64,
        /// DDPM timesteps (default 1000).
        #[serde(default = "m1000", rename = "M")]
        m: f64,
        /// Smallest training t (default 1e-5).
        #[serde(default = "eps_t")]
        epsilon_t: f64,
    },
    /// `VEPrecond`.
    Ve {
        /// Smallest supported sigma (default 0.02).
        #[serde(default = "ve_min", deserialize_with = "inf_f64")]
        sigma_min: f64,
        /// Largest supported sigma (default 100).
        #[serde(default = "ve_max", deserialize_with = "inf_f64")]
        sigma_max: f64,
    },
}

fn inf() -> f64 {
    f64::INFINITY
}
fn half() -> f64 {
    0.5
}
fn beta_d() -> f64 {
    19.9
}
fn beta_min() -> f64 {
    0.1
}
fn m1000() -> f64 {
    1000.0
}
fn eps_t() -> f64 {
    1e-5
}
fn ve_min() -> f64 {
    0.02
}
fn ve_max() -> f64 {
    100.0
}

impl PrecondConfig {
    /// The official defaults of `kind` (`"edm"`, `"vp"` or `"ve"`).
    pub fn default_for(kind: &str) -> Option<Self> {
        let v = serde_json::json!({ "kind": kind });
        serde_json::from_value(v).ok()
    }

    /// The official class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            PrecondConfig::Edm { .. } => "EDMPrecond",
            PrecondConfig::Vp { .. } => "VPPrecond",
            PrecondConfig::Ve { .. } => "VEPrecond",
        }
    }
}

/// The top level of the converter's JSON; both keys are checked by [`NetworkSpec`] (with its own messages).
#[derive(Deserialize)]
struct Description {
    #[serde(default, deserialize_with = "present")]
    class_name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    constructor_kwargs: Option<Value>,
}

/// A key that is there, even as `null` (which `Option`'s own rule would read as missing).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The converter's provenance record (`source`: the pickle's name, torch version), not read.
const CONVERTER_METADATA: &[&str] = &["source"];

/// A parsed network description.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    /// The wrapper, when `class_name` is one (state-dict keys under `model.`).
    pub precond: Option<PrecondConfig>,
    /// The inner network.
    pub arch: ArchConfig,
}

impl NetworkSpec {
    /// Prefix of the network's keys in the state dict (`"model"` under a wrapper, else empty).
    pub fn key_prefix(&self) -> &'static str {
        if self.precond.is_some() {
            "model"
        } else {
            ""
        }
    }

    /// Reads a JSON description from `path`.
    pub fn from_json_file(path: &Path) -> boot_sdk::Result<Self> {
        let description: Description = crate::config::read_json(path, CONVERTER_METADATA)?;
        Self::from_description(description, &path.display().to_string())
    }

    /// Parses a JSON description; errors name `source`.
    pub fn from_json_str(text: &str, source: &str) -> boot_sdk::Result<Self> {
        Self::from_description(crate::config::parse_json(text, source, CONVERTER_METADATA)?, source)
    }

    fn from_description(description: Description, source: &str) -> boot_sdk::Result<Self> {
        let err = |key: &str, msg: String| -> boot_sdk::anyhow::Error { InputError::new(source, key, msg).into() };
        let class = description
            .class_name
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| err("class_name", "missing (a string such as \"EDMPrecond\" or \"SongUNet\")".into()))?;
        let class = class.rsplit('.').next().unwrap_or(class).to_string();
        let mut kwargs: Map<String, Value> = match description.constructor_kwargs {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(err("constructor_kwargs", "must be an object".into())),
            None => Map::new(),
        };
        let take = |m: &mut Map<String, Value>, k: &str| m.remove(k);
        let (precond, model_type) = match class.as_str() {
            "EDMPrecond" | "VPPrecond" | "VEPrecond" => {
                let (kind, keys, default_model): (&str, &[&str], &str) = match class.as_str() {
                    "EDMPrecond" => ("edm", &["sigma_min", "sigma_max", "sigma_data"], "DhariwalUNet"),
                    "VPPrecond" => ("vp", &["beta_d", "beta_min", "M", "epsilon_t"], "SongUNet"),
                    _ => ("ve", &["sigma_min", "sigma_max"], "SongUNet"),
                };
                let mut p = Map::new();
                p.insert("kind".into(), Value::String(kind.into()));
                for k in keys {
                    if let Some(v) = take(&mut kwargs, k) {
                        p.insert((*k).into(), v);
                    }
                }
                let precond: PrecondConfig = serde_json::from_value(Value::Object(p))
                    .map_err(|e| err("constructor_kwargs", format!("{class}: {e}")))?;
                let img_resolution = take(&mut kwargs, "img_resolution")
                    .ok_or_else(|| err("constructor_kwargs.img_resolution", "missing".into()))?;
                let img_channels = take(&mut kwargs, "img_channels")
                    .ok_or_else(|| err("constructor_kwargs.img_channels", "missing".into()))?;
                let label_dim = take(&mut kwargs, "label_dim").unwrap_or(Value::from(0));
                take(&mut kwargs, "use_fp16");
                let model_type = match take(&mut kwargs, "model_type") {
                    Some(Value::String(s)) => s,
                    Some(_) => return Err(err("constructor_kwargs.model_type", "must be a string".into())),
                    None => default_model.to_string(),
                };
                kwargs.insert("img_resolution".into(), img_resolution);
                kwargs.insert("in_channels".into(), img_channels.clone());
                kwargs.insert("out_channels".into(), img_channels);
                kwargs.insert("label_dim".into(), label_dim);
                (Some(precond), model_type)
            }
            "iDDPMPrecond" => {
                return Err(err("class_name", "iDDPMPrecond is not supported (EDMPrecond, VPPrecond, VEPrecond, SongUNet, DhariwalUNet are)".into()))
            }
            _ => (None, class.clone()),
        };
        let value = Value::Object(kwargs);
        let arch = match model_type.as_str() {
            "SongUNet" => ArchConfig::Song(
                serde_json::from_value(value).map_err(|e| err("constructor_kwargs", format!("SongUNet: {e}")))?,
            ),
            "DhariwalUNet" => ArchConfig::Dhariwal(
                serde_json::from_value(value).map_err(|e| err("constructor_kwargs", format!("DhariwalUNet: {e}")))?,
            ),
            other => {
                return Err(err(
                    "class_name",
                    format!("unknown network `{other}` (expected EDMPrecond, VPPrecond, VEPrecond, SongUNet or DhariwalUNet)"),
                ))
            }
        };
        Ok(Self { precond, arch })
    }
}
