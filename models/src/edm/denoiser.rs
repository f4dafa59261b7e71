//! An EDM denoiser `D(x; sigma, labels)`: a preconditioner around a network, loaded from a converted
//! checkpoint (`scripts/convert_edm_pkl.py`: safetensors with the state-dict keys + a JSON description).

use std::collections::HashMap;
use std::path::Path;

use boot_sdk::candle::{DType, Device, Result, Tensor};
use boot_sdk::candle_nn::VarBuilder;

use super::config::{NetworkSpec, PrecondConfig};
use super::network::EdmNetwork;
use super::precond::{Coefficients, Precond, Real};

/// Preconditioner + network, as the official `EDMPrecond` / `VPPrecond` / `VEPrecond` objects.
#[derive(Debug, Clone)]
pub struct EdmDenoiser {
    precond: Precond,
    net: EdmNetwork,
    spec: NetworkSpec,
}

/// Per-sample coefficient tensors in the compute dtype: `[n, 1, 1, 1]` columns and the `[n]` noise labels.
#[derive(Debug, Clone)]
pub struct CoefficientTensors {
    /// `c_skip`.
    pub c_skip: Tensor,
    /// `c_out`.
    pub c_out: Tensor,
    /// `c_in`.
    pub c_in: Tensor,
    /// `c_noise` (the noise labels).
    pub c_noise: Tensor,
}

impl EdmDenoiser {
    /// Builds from `vb` at the state dict's root: the network sits under `model.` when `spec` names a wrapper.
    /// `precond` is used when `spec` is a bare network (and must be given then).
    pub fn new(vb: VarBuilder, spec: &NetworkSpec, precond: Option<PrecondConfig>) -> Result<Self> {
        let pc = match (spec.precond, precond) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            (None, None) => boot_sdk::candle::bail!("{} is a bare network: a preconditioning (edm, vp or ve) must be given", spec.arch.class_name()),
        };
        let prefix = spec.key_prefix();
        let net_vb = if prefix.is_empty() { vb } else { vb.pp(prefix) };
        let net = EdmNetwork::new(net_vb, &spec.arch)?;
        Ok(Self { precond: Precond::new(pc), net, spec: spec.clone() })
    }

    /// Assembles a denoiser from a preconditioner and a network built elsewhere (a student's).
    pub fn from_parts(precond: Precond, net: EdmNetwork, spec: NetworkSpec) -> Self {
        Self { precond, net, spec }
    }

    /// Loads a converted checkpoint strictly (see [`crate::load_strict`]) in `dtype` on `device`.
    /// Returns the denoiser and the network's tensors by their names without the wrapper prefix (for a
    /// student initialised from these weights).
    pub fn load(checkpoint: &Path, spec: &NetworkSpec, precond: Option<PrecondConfig>, dtype: DType, device: &Device) -> boot_sdk::Result<(Self, HashMap<String, Tensor>)> {
        let tensors = boot_sdk::io::load_safetensors(checkpoint, &Device::Cpu)?;
        let source = checkpoint.display().to_string();
        let prefix = match spec.key_prefix() {
            "" => String::new(),
            p => format!("{p}."),
        };
        let net_tensors: HashMap<String, Tensor> =
            tensors.iter().filter_map(|(k, v)| k.strip_prefix(prefix.as_str()).map(|n| (n.to_string(), v.clone()))).collect();
        let den = crate::load_strict(&source, tensors, dtype, device, |vb| Ok(Self::new(vb, spec, precond)?))?;
        let mut moved = HashMap::with_capacity(net_tensors.len());
        for (k, v) in net_tensors {
            moved.insert(k, v.to_device(device)?.to_dtype(dtype)?);
        }
        Ok((den, moved))
    }

    /// The preconditioner.
    pub fn precond(&self) -> &Precond {
        &self.precond
    }

    /// The inner network.
    pub fn network(&self) -> &EdmNetwork {
        &self.net
    }

    /// The parsed description.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// Number of class labels (0 = unconditional).
    pub fn label_dim(&self) -> usize {
        self.net.label_dim()
    }

    /// `[C, H, W]` of one sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        self.spec.arch.input_shape()
    }

    /// The smallest sigma the official object stores (used by EDM's sampler).
    pub fn sigma_min(&self) -> f64 {
        self.precond.sigma_min()
    }

    /// The largest sigma the official object stores (used by EDM's sampler).
    pub fn sigma_max(&self) -> f64 {
        self.precond.sigma_max()
    }

    /// Coefficients for each of `sigma`: computed in `f64` for `f64`, else in `f32` as the official wrappers
    /// do (then cast).
    pub fn coefficient_tensors(&self, sigma: &[f64], dtype: DType, device: &Device) -> Result<CoefficientTensors> {
        fn cols<R: Real + boot_sdk::candle::WithDType>(p: &Precond, sigma: &[f64], device: &Device) -> Result<[Tensor; 4]> {
            let c: Vec<Coefficients<R>> = sigma.iter().map(|&s| p.coefficients(R::of(s))).collect();
            let n = sigma.len();
            let col = |f: &dyn Fn(&Coefficients<R>) -> R| Tensor::from_vec(c.iter().map(f).collect::<Vec<R>>(), (n, 1, 1, 1), device);
            Ok([col(&|c| c.c_skip)?, col(&|c| c.c_out)?, col(&|c| c.c_in)?, col(&|c| c.c_noise)?.reshape(n)?])
        }
        let [c_skip, c_out, c_in, c_noise] = if dtype == DType::F64 { cols::<f64>(&self.precond, sigma, device)? } else { cols::<f32>(&self.precond, sigma, device)? };
        Ok(CoefficientTensors {
            c_skip: c_skip.to_dtype(dtype)?,
            c_out: c_out.to_dtype(dtype)?,
            c_in: c_in.to_dtype(dtype)?,
            c_noise: c_noise.to_dtype(dtype)?,
        })
    }

    /// `D(x; sigma, class_labels)` as the official wrapper's `forward`: `x [N, C, H, W]`, `sigma` one per
    /// sample (or one for all), `class_labels [N, label_dim]` (`None` = all-zero rows, unconditional);
    /// `extra` is added to the network's label embedding (BOOT students).
    ///
    /// For a half-precision `x` the noise labels, class labels and the embedding stay in `f32`
    /// ([`crate::embedding_dtype`]); the body and the output are in `x`'s dtype.
    pub fn forward(&self, x: &Tensor, sigma: &[f64], class_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        let (dtype, work) = (x.dtype(), crate::embedding_dtype(x.dtype()));
        let c = self.coefficient_tensors(sigma, work, x.device())?;
        let labels = match (self.label_dim(), class_labels) {
            (0, _) => None,
            (_, Some(l)) => Some(l.to_dtype(work)?),
            (l, None) => Some(Tensor::zeros((1, l), work, x.device())?),
        };
        let f = self.net.forward(&x.broadcast_mul(&c.c_in.to_dtype(dtype)?)?, &c.c_noise, labels.as_ref(), extra)?;
        x.broadcast_mul(&c.c_skip.to_dtype(dtype)?)? + f.broadcast_mul(&c.c_out.to_dtype(dtype)?)?
    }
}
