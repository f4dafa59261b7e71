//! The EDM teacher: `[teacher] kind = "edm"`.
//!
//! ```toml
//! [teacher]
//! kind = "edm"
//! checkpoint = "edm-cifar10-32x32-uncond-vp.safetensors"  # from scripts/convert_edm_pkl.py, relative to the config
//! # network = "edm-cifar10-32x32-uncond-vp.json"          # default: the checkpoint path with extension .json
//! # precond = "vp"        # "edm" | "vp" | "ve": required for a bare SongUNet/DhariwalUNet file, else checked
//! # labels = "uniform"    # class-conditional nets: "uniform" (default), "null" (always unconditional), or [3, 7]
//! ```
//!
//! The framework's VP time maps to EDM's sigma as `sigma_edm = sigma_t / alpha_t` and the input as
//! `x_t / alpha_t`; the teacher returns `D(x_t / alpha_t; sigma_edm)`, which is EDM's signal prediction.
//! Class labels are one-hot; a `None` label is an all-zero row (EDM's unconditional input). A zero
//! `sigma_t` is raised to [`SIGMA_FLOOR`] (EDM itself is never called at sigma 0 and would return NaN).

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::one_hot_labels;
use boot_sdk::{Cond, CondSpec, InputError, Teacher, TeacherConfig, TeacherContext, Times};
use boot_kit::Labels;
use serde::Deserialize;

use boot_models::edm::{NetworkSpec, PrecondConfig};
use boot_models::edm::EdmDenoiser;

/// Preconditioning kinds, as named in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecondKind {
    /// `EDMPrecond`.
    Edm,
    /// `VPPrecond`.
    Vp,
    /// `VEPrecond`.
    Ve,
}

impl PrecondKind {
    fn name(self) -> &'static str {
        match self {
            PrecondKind::Edm => "edm",
            PrecondKind::Vp => "vp",
            PrecondKind::Ve => "ve",
        }
    }
    fn of(c: &PrecondConfig) -> Self {
        match c {
            PrecondConfig::Edm { .. } => PrecondKind::Edm,
            PrecondConfig::Vp { .. } => PrecondKind::Vp,
            PrecondConfig::Ve { .. } => PrecondKind::Ve,
        }
    }
}

/// `[teacher] kind = "edm"`: a converted NVIDIA EDM checkpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdmTeacherConfig {
    /// Converted checkpoint (`.safetensors` with the official state-dict keys), relative to the config.
    pub checkpoint: PathBuf,
    /// The JSON description (`class_name`, `constructor_kwargs`); default: `checkpoint` with extension `json`.
    #[serde(default)]
    pub network: Option<PathBuf>,
    /// Preconditioning of a bare network; for a wrapper it is taken from the file and checked against this.
    #[serde(default)]
    pub precond: Option<PrecondKind>,
    /// Label policy of class-conditional nets.
    #[serde(default)]
    pub labels: Labels,
}

impl EdmTeacherConfig {
    /// Builds the teacher (also usable without the typetag registry).
    pub fn build_teacher(&self, ctx: &TeacherContext) -> boot_sdk::Result<EdmTeacher> {
        let cfg_err = |key: &str, msg: String| -> boot_sdk::anyhow::Error { InputError::config(key, msg).into() };
        let checkpoint = ctx.base_dir.join(&self.checkpoint);
        let network = match &self.network {
            Some(p) => ctx.base_dir.join(p),
            None => checkpoint.with_extension("json"),
        };
        let spec = NetworkSpec::from_json_file(&network)?;
        let precond = match (spec.precond, self.precond) {
            (Some(p), Some(k)) if PrecondKind::of(&p) != k => {
                return Err(cfg_err(
                    "teacher.precond",
                    format!("\"{}\" disagrees with {} in {}", k.name(), p.class_name(), network.display()),
                ))
            }
            (Some(_), _) => None,
            (None, Some(k)) => PrecondConfig::default_for(k.name()),
            (None, None) => {
                return Err(cfg_err(
                    "teacher.precond",
                    format!("{} holds a bare {}: set precond = \"edm\", \"vp\" or \"ve\"", network.display(), spec.arch.class_name()),
                ))
            }
        };
        let label_dim = spec.arch.label_dim();
        self.labels.check((label_dim > 0).then_some(label_dim))?;
        let (denoiser, weights) = EdmDenoiser::load(&checkpoint, &spec, precond, ctx.dtype, &ctx.device)?;
        Ok(EdmTeacher { denoiser, weights: Arc::new(weights), labels: self.labels.clone(), dtype: ctx.dtype, device: ctx.device.clone() })
    }
}

boot_sdk::register! {
    teacher "edm" => "NVIDIA EDM network (SongUNet / DhariwalUNet with EDM, VP or VE preconditioning) from a converted checkpoint";
    impl TeacherConfig for EdmTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(self.build_teacher(ctx)?))
        }
    }
}

/// An EDM denoiser seen through the signal-prediction contract.
pub struct EdmTeacher {
    denoiser: EdmDenoiser,
    weights: Arc<HashMap<String, Tensor>>,
    labels: Labels,
    dtype: DType,
    device: Device,
}

impl std::fmt::Debug for EdmTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdmTeacher")
            .field("precond", &self.denoiser.precond().config)
            .field("network", &self.denoiser.spec().arch.class_name())
            .field("tensors", &self.weights.len())
            .field("labels", &self.labels)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl EdmTeacher {
    /// The wrapped denoiser.
    pub fn denoiser(&self) -> &EdmDenoiser {
        &self.denoiser
    }

    /// The network's tensors (parameters and buffers) by state-dict name without the wrapper prefix, in the
    /// teacher's dtype.
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }
}

/// One-hot labels `[n, label_dim]` in `dtype` for a batch of `n` (`None` when the net is unconditional or
/// `cond` has no classes); shared by the teacher and the student.
pub fn one_hot_of(cond: &Cond, n: usize, label_dim: usize, dtype: DType, device: &Device) -> boot_sdk::Result<Option<Tensor>> {
    match &cond.class {
        None => Ok(None),
        Some(_) if label_dim == 0 => Ok(None),
        Some(c) if c.len() != n => Err(boot_sdk::anyhow::anyhow!("edm: {} class labels for a batch of {n}", c.len())),
        Some(c) => Ok(Some(one_hot_labels(c, label_dim, dtype, device)?)),
    }
}

/// Smallest EDM sigma the teacher evaluates (see [`EdmTeacher`]'s `denoise`).
pub const SIGMA_FLOOR: f64 = 1e-10;

impl Teacher for EdmTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.denoiser.sample_shape()
    }

    fn cond_spec(&self) -> CondSpec {
        let l = self.denoiser.label_dim();
        CondSpec { num_classes: (l > 0).then_some(l), ..CondSpec::default() }
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let n = x_t.dim(0)?;
        if times.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("edm teacher: {} times for a batch of {n}", times.len()));
        }
        // sigma_t = 0 (t = 0 on schedules that reach clean data) would make EDM's c_noise = ln(0) and D NaN;
        // a floor of 1e-10 gives D = x + O(1e-10), the exact limit. Positive sigmas are untouched.
        let sigma: Vec<f64> = times.sigma.iter().zip(&times.alpha).map(|(s, a)| (s / a).max(SIGMA_FLOOR)).collect();
        let inv_alpha: Vec<f64> = times.alpha.iter().map(|a| 1.0 / a).collect();
        let x = x_t.broadcast_mul(&boot_sdk::times::column(&inv_alpha, x_t.dtype(), x_t.device())?)?;
        let labels = one_hot_of(cond, n, self.denoiser.label_dim(), self.dtype, &self.device)?;
        Ok(self.denoiser.forward(&x, &sigma, labels.as_ref(), None)?)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        let l = self.denoiser.label_dim();
        Ok(self.labels.draw(seeds, (l > 0).then_some(l)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
