//! The analytic teacher: the exact denoiser `E[x0 | x_t]` of a Gaussian mixture, class-conditional when the
//! mixture's components carry classes (classes are sets of components, so classifier-free guidance is exact
//! too), with the exact density for metrics. Config: `[teacher] kind = "analytic"`.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use boot_sdk::rand::Rng;
use boot_sdk::rng::rng_for;
use boot_sdk::{Cond, CondSpec, ExactDensity, InputError, Teacher, TeacherConfig, TeacherContext, Times};
use boot_sdk::candle::Tensor;
use serde::Deserialize;

use crate::mixture::Mixture;
use crate::patterns::procedural_images;

/// Components of the built-in mixture.
const DEFAULT_COMPONENTS: usize = 8;
/// Channels of the built-in mixture's images.
const DEFAULT_CHANNELS: usize = 3;
/// Height and width of the built-in mixture's images.
const DEFAULT_SIZE: usize = 16;
/// Component std of the built-in mixture.
const DEFAULT_STD: f64 = 0.1;
/// Classes of the built-in mixture (at most one per component).
const DEFAULT_CLASSES: usize = 4;

/// `[teacher] kind = "analytic"`. Without `mixture`, the teacher uses the built-in procedural mixture that the
/// other fields describe; with `mixture`, the file describes it and those fields must be left out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticTeacherConfig {
    /// Safetensors file with `means` `[K, C, H, W]`, `weights` `[K]`, `std` and optional `classes` `[K]`,
    /// relative to the config's directory.
    pub mixture: Option<PathBuf>,
    /// Built-in mixture: number of components `K` (default 8).
    pub components: Option<usize>,
    /// Built-in mixture: image channels (default 3).
    pub channels: Option<usize>,
    /// Built-in mixture: image height and width (default 16).
    pub size: Option<usize>,
    /// Built-in mixture: component std `s` (default 0.1).
    pub std: Option<f64>,
    /// Built-in mixture: number of classes, component `k` in class `k % num_classes`; 0 = unconditional
    /// (default `min(4, components)`).
    pub num_classes: Option<usize>,
    /// Built-in mixture: seed of the procedural images (default 0).
    pub seed: Option<u64>,
    /// Class labels that [`Teacher::sample_cond`] draws from, uniformly (default: all classes).
    pub labels: Option<Vec<u32>>,
}

boot_sdk::register! {
    teacher "analytic" => "exact denoiser and density of a Gaussian mixture (built-in procedural images or a safetensors file), optionally class-conditional";
    impl TeacherConfig for AnalyticTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            let mixture = match &self.mixture {
                Some(path) => {
                    let builtin_only = [
                        ("components", self.components.is_some()),
                        ("channels", self.channels.is_some()),
                        ("size", self.size.is_some()),
                        ("std", self.std.is_some()),
                        ("num_classes", self.num_classes.is_some()),
                        ("seed", self.seed.is_some()),
                    ];
                    if let Some((key, _)) = builtin_only.iter().find(|(_, set)| *set) {
                        return Err(InputError::config(format!("teacher.{key}"),
                            "describes the built-in mixture, but teacher.mixture names a file; remove one of them",
                        )
                        .into());
                    }
                    Mixture::from_safetensors(&ctx.base_dir.join(path), &ctx.device)?
                }
                None => self.builtin(ctx)?,
            };
            let labels = self.label_pool(&mixture)?;
            Ok(Arc::new(AnalyticTeacher { mixture, labels }))
        }
    }
}

impl AnalyticTeacherConfig {
    /// The built-in procedural mixture: equal weights, component `k` in class `k % num_classes`.
    fn builtin(&self, ctx: &TeacherContext) -> boot_sdk::Result<Mixture> {
        let positive = |key: &str, v: Option<usize>, default: usize| -> boot_sdk::Result<usize> {
            match v.unwrap_or(default) {
                0 => Err(InputError::config(format!("teacher.{key}"), "must be at least 1, found 0").into()),
                n => Ok(n),
            }
        };
        let k = positive("components", self.components, DEFAULT_COMPONENTS)?;
        let channels = positive("channels", self.channels, DEFAULT_CHANNELS)?;
        let size = positive("size", self.size, DEFAULT_SIZE)?;
        let num_classes = self.num_classes.unwrap_or(DEFAULT_CLASSES.min(k));
        if num_classes > k {
            return Err(InputError::config("teacher.num_classes",
                format!("{num_classes} classes need at least as many components, found teacher.components = {k}"),
            )
            .into());
        }
        let classes = (num_classes > 0).then(|| (0..k).map(|j| (j % num_classes) as u32).collect());
        let means = procedural_images(k, channels, size, self.seed.unwrap_or(0));
        Mixture::new([channels, size, size], means, &vec![1.0; k], self.std.unwrap_or(DEFAULT_STD), classes, &ctx.device)
            .map_err(|e| {
                let key = match e.part {
                    "std" => "teacher.std",
                    "classes" => "teacher.num_classes",
                    _ => "teacher.components",
                };
                InputError::config(key, e.message).into()
            })
    }

    /// The labels `sample_cond` draws from: `labels` checked against the mixture's classes, or every class.
    fn label_pool(&self, mixture: &Mixture) -> boot_sdk::Result<Vec<u32>> {
        let err = |message: String| -> boot_sdk::Result<Vec<u32>> { Err(InputError::config("teacher.labels", message).into()) };
        match (&self.labels, mixture.num_classes()) {
            (None, None) => Ok(Vec::new()),
            (None, Some(n)) => Ok((0..n as u32).collect()),
            (Some(_), None) => err("the mixture is unconditional (it has no classes), so it takes no labels".into()),
            (Some(l), Some(_)) if l.is_empty() => err("is empty; leave it out to draw from every class".into()),
            (Some(l), Some(n)) => match l.iter().find(|&&c| c as usize >= n) {
                Some(c) => err(format!("label {c} is out of range: the mixture has {n} classes (0..{})", n - 1)),
                None => Ok(l.clone()),
            },
        }
    }
}

/// The exact denoiser of a Gaussian [`Mixture`]: `f(x_t, t, cond) = E[x0 | x_t, class]`.
#[derive(Debug)]
pub struct AnalyticTeacher {
    mixture: Mixture,
    /// Labels drawn by `sample_cond` (empty for an unconditional mixture).
    labels: Vec<u32>,
}

impl AnalyticTeacher {
    /// The data distribution.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }
}

impl Teacher for AnalyticTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.mixture.shape()
    }

    fn cond_spec(&self) -> CondSpec {
        CondSpec { num_classes: self.mixture.num_classes(), ..CondSpec::default() }
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let prior = self.mixture.log_prior(cond.class.as_deref(), x_t.dim(0)?)?;
        self.mixture.posterior_mean(x_t, &times.alpha, &times.sigma, &prior)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        if self.labels.is_empty() {
            return Ok(Cond::none());
        }
        let draw = |&seed: &u64| Some(self.labels[rng_for(seed).random_range(0..self.labels.len())]);
        Ok(Cond::classes(seeds.iter().map(draw).collect()))
    }

    fn exact_density(&self) -> Option<&dyn ExactDensity> {
        Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExactDensity for AnalyticTeacher {
    fn nll_per_dim(&self, x0: &Tensor, cond: &Cond) -> boot_sdk::Result<Vec<f64>> {
        let prior = self.mixture.log_prior(cond.class.as_deref(), x0.dim(0)?)?;
        let d = self.mixture.dim() as f64;
        Ok(self.mixture.log_density(x0, &prior)?.into_iter().map(|l| -l / d).collect())
    }

    fn mode_of(&self, x0: &Tensor) -> boot_sdk::Result<Vec<Option<usize>>> {
        self.mixture.mode_of(x0)
    }

    fn reachable_modes(&self, cond: &Cond) -> boot_sdk::Result<Vec<usize>> {
        let mut modes = Vec::new();
        match &cond.class {
            None => modes.extend(0..self.mixture.components()),
            Some(labels) => {
                for &label in labels {
                    modes.extend(self.mixture.components_of(label)?);
                }
            }
        }
        modes.sort_unstable();
        modes.dedup();
        Ok(modes)
    }

    fn mode_weights(&self, cond: &Cond, batch: usize) -> boot_sdk::Result<Vec<Vec<f64>>> {
        Ok(self.mixture.log_prior(cond.class.as_deref(), batch)?.exp()?.to_vec2::<f64>()?)
    }

    fn moments(&self, weights: &[f64]) -> boot_sdk::Result<(Vec<f64>, Vec<f64>)> {
        self.mixture.moments(weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{teacher_ctx, Cosine, TempDir};
    use boot_sdk::candle::Device;

    fn parse(json: &str) -> boot_sdk::Result<Box<dyn TeacherConfig>> {
        Ok(boot_sdk::serde_json::from_str(json)?)
    }

    fn build(json: &str) -> boot_sdk::Result<Arc<dyn Teacher>> {
        // As the host reports it: config errors named after the run's file.
        parse(json)?.build(&teacher_ctx(std::env::temp_dir())).map_err(|e| boot_sdk::error::name_config_source(e, "run.toml"))
    }

    /// The input error of building the teacher of `json`, checked to name `run.toml` and `key`.
    fn config_error(json: &str, key: &str) -> String {
        let err = build(json).expect_err("must fail");
        assert!(err.downcast_ref::<InputError>().is_some(), "not an InputError: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("run.toml: ") && msg.contains(key), "{msg}");
        msg
    }

    #[test]
    fn default_config_builds_the_builtin_mixture() -> boot_sdk::Result<()> {
        let t = build(r#"{"kind": "analytic"}"#)?;
        assert_eq!(t.sample_shape(), [3, 16, 16]);
        assert_eq!(t.cond_spec().num_classes, Some(4));
        let a = t.as_any().downcast_ref::<AnalyticTeacher>().expect("analytic teacher");
        assert_eq!(a.mixture().components(), 8);
        assert_eq!(a.mixture().std(), 0.1);
        assert_eq!(a.mixture().classes(), Some(&[0u32, 1, 2, 3, 0, 1, 2, 3][..]));
        let u = build(r#"{"kind": "analytic", "num_classes": 0, "components": 3, "size": 8, "channels": 1}"#)?;
        assert_eq!((u.sample_shape(), u.cond_spec()), ([1, 8, 8], CondSpec::default()));
        assert!(u.sample_cond(&[1, 2])?.class.is_none());
        Ok(())
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(parse(r#"{"kind": "analytic", "component": 3}"#).is_err(), "unknown fields are refused");
        config_error(r#"{"kind": "analytic", "labels": [0, 4]}"#, "teacher.labels");
        config_error(r#"{"kind": "analytic", "labels": []}"#, "teacher.labels");
        config_error(r#"{"kind": "analytic", "num_classes": 0, "labels": [0]}"#, "teacher.labels");
        config_error(r#"{"kind": "analytic", "components": 2, "num_classes": 3}"#, "teacher.num_classes");
        config_error(r#"{"kind": "analytic", "std": -1.0}"#, "teacher.std");
        config_error(r#"{"kind": "analytic", "size": 0}"#, "teacher.size");
        config_error(r#"{"kind": "analytic", "mixture": "m.safetensors", "std": 0.2}"#, "teacher.std");
    }

    #[test]
    fn mixture_file_is_resolved_against_the_config_folder() -> boot_sdk::Result<()> {
        let dir = TempDir::new("teacher-file");
        let mut tensors = std::collections::HashMap::new();
        tensors.insert("means".to_string(), Tensor::zeros((2, 1, 4, 4), boot_sdk::candle::DType::F32, &Device::Cpu)?);
        tensors.insert("weights".to_string(), Tensor::new(&[1f32, 1.0], &Device::Cpu)?);
        tensors.insert("std".to_string(), Tensor::new(0.5f32, &Device::Cpu)?);
        boot_sdk::io::save_safetensors(&dir.0.join("m.safetensors"), &tensors, None)?;
        let t = parse(r#"{"kind": "analytic", "mixture": "m.safetensors"}"#)?.build(&teacher_ctx(dir.0.clone()))?;
        assert_eq!(t.sample_shape(), [1, 4, 4]);
        assert_eq!(t.cond_spec().num_classes, None);
        Ok(())
    }

    #[test]
    fn sample_cond_draws_from_the_labels_per_seed() -> boot_sdk::Result<()> {
        let t = build(r#"{"kind": "analytic", "labels": [1, 3]}"#)?;
        let seeds: Vec<u64> = (0..200).collect();
        let labels = t.sample_cond(&seeds)?.class.expect("class labels");
        assert!(labels.iter().all(|l| matches!(l, Some(1) | Some(3))));
        assert!(labels.contains(&Some(1)) && labels.contains(&Some(3)));
        // Per-sample: a sub-batch draws what the full batch drew for those seeds.
        assert_eq!(t.sample_cond(&seeds[50..60])?.class.expect("labels"), labels[50..60].to_vec());
        let all = build(r#"{"kind": "analytic"}"#)?.sample_cond(&seeds)?.class.expect("labels");
        assert!((0..4).all(|c| all.contains(&Some(c))));
        Ok(())
    }

    #[test]
    fn exact_density_of_the_teacher() -> boot_sdk::Result<()> {
        let t = build(r#"{"kind": "analytic"}"#)?;
        let a = t.as_any().downcast_ref::<AnalyticTeacher>().expect("analytic teacher");
        let density = t.exact_density().expect("exact density");
        let means = a.mixture().means()?.to_dtype(boot_sdk::candle::DType::F32)?;
        let far = (&means + 1.0)?;
        let near_nll = density.nll_per_dim(&means, &Cond::none())?;
        let far_nll = density.nll_per_dim(&far, &Cond::none())?;
        assert!(near_nll.iter().zip(&far_nll).all(|(n, f)| n + 10.0 < *f), "{near_nll:?} vs {far_nll:?}");
        let noisy = (&means + Tensor::randn(0f32, 0.1, means.shape(), &Device::Cpu)?)?;
        assert_eq!(density.mode_of(&noisy)?, (0..8).map(Some).collect::<Vec<_>>());
        // The average of two means lies in neither mode.
        let blend = ((means.narrow(0, 0, 1)? + means.narrow(0, 1, 1)?)? * 0.5)?;
        assert_eq!(density.mode_of(&blend)?, vec![None]);
        // Conditioned on its own class a mean is 4 times as likely: its weight is 1/2 within the class, 1/8 overall.
        let own = Cond::classes((0..8).map(|k| Some(k % 4)).collect());
        let cond_nll = density.nll_per_dim(&means, &own)?;
        let d = 768.0;
        for (c, u) in cond_nll.iter().zip(&near_nll) {
            assert!(((u - c) * d - 4f64.ln()).abs() < 1e-6, "{u} vs {c}");
        }
        assert_eq!(density.reachable_modes(&Cond::classes(vec![Some(1), Some(1)]))?, vec![1, 5]);
        assert_eq!(density.reachable_modes(&Cond::classes(vec![Some(1), None]))?, (0..8).collect::<Vec<_>>());
        assert_eq!(density.reachable_modes(&Cond::none())?, (0..8).collect::<Vec<_>>());
        // Mode weights: the mixture's 1/8 each, or 1/2 on each component of a label's class.
        let weights = density.mode_weights(&Cond::classes(vec![Some(1), None]), 2)?;
        let expected = [[0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0], [0.125; 8]];
        assert!(weights.iter().flatten().zip(expected.iter().flatten()).all(|(w, e)| (w - e).abs() < 1e-12), "{weights:?}");
        assert_eq!(density.mode_weights(&Cond::none(), 3)?.len(), 3);
        let (mean, cov) = density.moments(&weights[1])?;
        assert_eq!((mean.len(), cov.len()), (768, 768 * 768));
        Ok(())
    }

    #[test]
    fn denoiser_keeps_dtype_and_recovers_clean_means() -> boot_sdk::Result<()> {
        let t = build(r#"{"kind": "analytic"}"#)?;
        let a = t.as_any().downcast_ref::<AnalyticTeacher>().expect("analytic teacher");
        let means = a.mixture().means()?.to_dtype(boot_sdk::candle::DType::F32)?;
        // At t = 0 the posterior mean of a clean mean is itself, shrunk by nothing.
        let times = Times::constant(&Cosine, 0.0, 8);
        let out = t.denoise(&means, &times, &Cond::none())?;
        assert_eq!(out.dtype(), boot_sdk::candle::DType::F32);
        assert!((out - &means)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
        // At t = 1 the input carries no signal: the posterior mean is the (class) prior mean.
        let times = Times::constant(&Cosine, 1.0, 2);
        let noise = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu)?;
        let out = t.denoise(&noise, &times, &Cond::classes(vec![Some(2), None]))?;
        let class2 = ((means.get(2)? + means.get(6)?)? * 0.5)?;
        assert!((out.get(0)? - class2)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
        assert!((out.get(1)? - means.mean(0)?)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
        Ok(())
    }
}
