//! The data distribution of the analytic teacher: a mixture of `K` isotropic Gaussians `N(mu_k, s^2 I)` over
//! images `[C, H, W]`, with weights `pi_k` and, optionally, a class per component. Everything about it is
//! exact: the posterior mean at any noise level (the teacher), the log density and the most likely component.
//!
//! All arithmetic runs in f64: with `D = 768` pixels the squared distances reach the thousands while the
//! differences that decide the responsibilities are a few units.

use std::f64::consts::PI;
use std::path::Path;

use boot_sdk::candle::{DType, Device, Tensor, D};
use boot_sdk::io::{load_safetensors, take_tensor};
use boot_sdk::InputError;

/// A Gaussian mixture `sum_k pi_k N(mu_k, s^2 I)` over images of one shape, with optional component classes.
#[derive(Debug, Clone)]
pub struct Mixture {
    shape: [usize; 3],
    /// `[K, D]` means, f64.
    means: Tensor,
    /// `[1, K]` squared norms of the means, f64.
    mean_sq: Tensor,
    log_weights: Vec<f64>,
    std: f64,
    classes: Option<Vec<u32>>,
    num_classes: usize,
}

/// Why a mixture description is invalid: `part` is `means`, `weights`, `std` or `classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The offending part of the description.
    pub part: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn invalid<T>(part: &'static str, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid { part, message: message.into() })
}

impl Mixture {
    /// A mixture with `means` (`K` images of `shape`, flattened one after another), positive `weights`
    /// (normalised here), component std `std > 0` and optional `classes` (class id of each component; the
    /// class ids must be `0..N` with every class owning at least one component).
    pub fn new(
        shape: [usize; 3],
        means: Vec<f64>,
        weights: &[f64],
        std: f64,
        classes: Option<Vec<u32>>,
        device: &Device,
    ) -> Result<Self, Invalid> {
        let dim: usize = shape.iter().product();
        let k = weights.len();
        if dim == 0 {
            return invalid("means", format!("image shape {shape:?} is empty"));
        }
        if k == 0 {
            return invalid("weights", "the mixture needs at least one component");
        }
        if means.len() != k * dim {
            return invalid("means", format!("expected {k} x {dim} values, found {}", means.len()));
        }
        if let Some(i) = means.iter().position(|m| !m.is_finite()) {
            return invalid("means", format!("value {} at flat index {i} is not finite", means[i]));
        }
        if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w > 0.0)) {
            return invalid("weights", format!("weight {} of component {i} must be positive and finite", weights[i]));
        }
        if !(std.is_finite() && std > 0.0) {
            return invalid("std", format!("must be positive and finite, found {std}"));
        }
        let num_classes = match &classes {
            None => 0,
            Some(c) if c.len() != k => return invalid("classes", format!("expected {k} class ids, found {}", c.len())),
            Some(c) => {
                let n = c.iter().max().map_or(0, |&m| m as usize + 1);
                if let Some(empty) = (0..n).find(|&class| !c.contains(&(class as u32))) {
                    return invalid("classes", format!("class {empty} has no component; class ids must be 0..{n} without gaps"));
                }
                n
            }
        };
        let total: f64 = weights.iter().sum();
        let log_weights = weights.iter().map(|w| (w / total).ln()).collect();
        let build = || -> boot_sdk::Result<(Tensor, Tensor)> {
            let means = Tensor::from_vec(means, (k, dim), device)?;
            let mean_sq = means.sqr()?.sum_keepdim(1)?.t()?.contiguous()?;
            Ok((means, mean_sq))
        };
        let (means, mean_sq) = build().or_else(|e| invalid("means", format!("cannot place the means on {device:?}: {e}")))?;
        Ok(Self { shape, means, mean_sq, log_weights, std, classes, num_classes })
    }

    /// Reads a mixture from a safetensors file with `means` `[K, C, H, W]`, `weights` `[K]`, `std` (shape `[]`
    /// or `[1]`) and optional `classes` `[K]` (any integer or float dtype). Every problem is an
    /// [`InputError`] naming the file and the tensor.
    pub fn from_safetensors(path: &Path, device: &Device) -> boot_sdk::Result<Self> {
        let file = path.display().to_string();
        let mut tensors = load_safetensors(path, &Device::Cpu)?;
        let means = match tensors.get("means").map(|t| t.dims().to_vec()) {
            None => return Err(InputError::new(&file, "tensor `means`", "missing (expected shape [K, C, H, W])").into()),
            Some(dims) if dims.len() != 4 => {
                return Err(InputError::new(&file, "tensor `means`", format!("expected shape [K, C, H, W], found {dims:?}")).into())
            }
            Some(dims) => take_tensor(&mut tensors, &file, "means", &dims)?,
        };
        let (k, c, h, w) = means.dims4()?;
        let weights = take_tensor(&mut tensors, &file, "weights", &[k])?;
        let std = match tensors.remove("std") {
            None => return Err(InputError::new(&file, "tensor `std`", "missing (expected shape [] or [1])").into()),
            Some(t) if t.elem_count() != 1 || t.rank() > 1 => {
                return Err(InputError::new(&file, "tensor `std`", format!("expected shape [] or [1], found {:?}", t.dims())).into())
            }
            Some(t) => values(&t, &file, "std")?[0],
        };
        let classes = match tensors.contains_key("classes") {
            false => None,
            true => {
                let t = take_tensor(&mut tensors, &file, "classes", &[k])?;
                Some(class_ids(&values(&t, &file, "classes")?, &file)?)
            }
        };
        if let Some(extra) = tensors.keys().min() {
            return Err(InputError::new(
                &file,
                format!("tensor `{extra}`"),
                "unexpected (a mixture file holds `means`, `weights`, `std` and optionally `classes`)",
            )
            .into());
        }
        let means = values(&means, &file, "means")?;
        let weights = values(&weights, &file, "weights")?;
        Self::new([c, h, w], means, &weights, std, classes, device)
            .map_err(|e| InputError::new(&file, format!("tensor `{}`", e.part), e.message).into())
    }

    /// Shape `[C, H, W]` of one image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of pixels `D = C * H * W`.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of components `K`.
    pub fn components(&self) -> usize {
        self.log_weights.len()
    }

    /// The std `s` of every component.
    pub fn std(&self) -> f64 {
        self.std
    }

    /// Normalised weights `pi_k`.
    pub fn weights(&self) -> Vec<f64> {
        self.log_weights.iter().map(|l| l.exp()).collect()
    }

    /// Means `[K, C, H, W]` (f64).
    pub fn means(&self) -> boot_sdk::Result<Tensor> {
        let [c, h, w] = self.shape;
        Ok(self.means.reshape((self.components(), c, h, w))?)
    }

    /// Class id of each component, for class-conditional mixtures.
    pub fn classes(&self) -> Option<&[u32]> {
        self.classes.as_deref()
    }

    /// Number of classes, for class-conditional mixtures.
    pub fn num_classes(&self) -> Option<usize> {
        self.classes.as_ref().map(|_| self.num_classes)
    }

    /// Components a sample with `label` can come from: those of the class, or all for the null label `None`.
    pub fn components_of(&self, label: Option<u32>) -> boot_sdk::Result<Vec<usize>> {
        match (label, &self.classes) {
            (None, _) => Ok((0..self.components()).collect()),
            (Some(c), None) => anyhow::bail!("the analytic mixture is unconditional but got class label {c}"),
            (Some(c), Some(_)) if c as usize >= self.num_classes => {
                anyhow::bail!("class label {c} is out of range: the analytic mixture has {} classes", self.num_classes)
            }
            (Some(c), Some(classes)) => Ok((0..classes.len()).filter(|&k| classes[k] == c).collect()),
        }
    }

    /// `[B, K]` log prior weights of the components for each sample: `log pi_k` for the full mixture (no labels,
    /// or a `None` label), the class's renormalised weights (and `-inf` elsewhere) for a label `Some(c)`.
    pub fn log_prior(&self, labels: Option<&[Option<u32>]>, batch: usize) -> boot_sdk::Result<Tensor> {
        let k = self.components();
        let mut rows = Vec::with_capacity(batch * k);
        match labels {
            None => (0..batch).for_each(|_| rows.extend_from_slice(&self.log_weights)),
            Some(labels) => {
                anyhow::ensure!(labels.len() == batch, "got {} class labels for a batch of {batch}", labels.len());
                for &label in labels {
                    let allowed = self.components_of(label)?;
                    let norm = log_sum_exp(allowed.iter().map(|&j| self.log_weights[j]));
                    let start = rows.len();
                    rows.resize(start + k, f64::NEG_INFINITY);
                    for j in allowed {
                        rows[start + j] = self.log_weights[j] - norm;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(rows, (batch, k), self.means.device())?)
    }

    /// `[B, K]` log responsibilities `log r_k(x_t)` of noisy images `x_t` (`[B, C, H, W]`) with per-sample
    /// `alpha`, `sigma`: `x_t | k ~ N(alpha mu_k, (alpha^2 s^2 + sigma^2) I)`.
    pub fn log_responsibilities(&self, x_t: &Tensor, alpha: &[f64], sigma: &[f64], log_prior: &Tensor) -> boot_sdk::Result<Tensor> {
        let x = self.flat(x_t)?;
        let var: Vec<f64> = alpha.iter().zip(sigma).map(|(a, s)| a * a * self.std * self.std + s * s).collect();
        let logits = self.log_joint(&x, alpha, &var, log_prior)?;
        Ok(logits.broadcast_sub(&row_log_sum_exp(&logits)?)?)
    }

    /// The exact posterior mean `E[x0 | x_t]` for noisy images `x_t` (`[B, C, H, W]`) with per-sample `alpha`,
    /// `sigma`, under the prior `log_prior` (`[B, K]`, from [`Mixture::log_prior`]), in the dtype of `x_t`:
    /// `sum_k r_k [mu_k + c (x_t - alpha mu_k)]` with `c = alpha s^2 / (alpha^2 s^2 + sigma^2)`.
    pub fn posterior_mean(&self, x_t: &Tensor, alpha: &[f64], sigma: &[f64], log_prior: &Tensor) -> boot_sdk::Result<Tensor> {
        let s2 = self.std * self.std;
        let var: Vec<f64> = alpha.iter().zip(sigma).map(|(a, s)| a * a * s2 + s * s).collect();
        let gain: Vec<f64> = alpha.iter().zip(&var).map(|(a, v)| a * s2 / v).collect();
        let keep: Vec<f64> = alpha.iter().zip(&gain).map(|(a, c)| 1.0 - a * c).collect();
        let x = self.flat(x_t)?;
        let logits = self.log_joint(&x, alpha, &var, log_prior)?;
        let resp = logits.broadcast_sub(&row_log_sum_exp(&logits)?)?.exp()?;
        let mixed = resp.matmul(&self.means)?;
        let out = (mixed.broadcast_mul(&self.column(&keep)?)? + x.broadcast_mul(&self.column(&gain)?)?)?;
        Ok(out.reshape(x_t.shape())?.to_dtype(x_t.dtype())?.to_device(x_t.device())?)
    }

    /// Log density `log p(x0)` of each image of `x0` (`[B, C, H, W]`) under the prior `log_prior` (`[B, K]`).
    pub fn log_density(&self, x0: &Tensor, log_prior: &Tensor) -> boot_sdk::Result<Vec<f64>> {
        let b = x0.dim(0)?;
        let x = self.flat(x0)?;
        let s2 = self.std * self.std;
        let logits = self.log_joint(&x, &vec![1.0; b], &vec![s2; b], log_prior)?;
        let norm = 0.5 * self.dim() as f64 * (2.0 * PI * s2).ln();
        Ok(row_log_sum_exp(&logits)?.flatten_all()?.to_vec1::<f64>()?.into_iter().map(|l| l - norm).collect())
    }

    /// Exact mean `[D]` and covariance `[D * D]` (row-major) of the flattened mixture with component weights
    /// `weights` (non-negative, normalised here) in place of its own: `m = sum_k w_k mu_k`,
    /// `C = s^2 I + sum_k w_k (mu_k - m)(mu_k - m)^T`.
    pub fn moments(&self, weights: &[f64]) -> boot_sdk::Result<(Vec<f64>, Vec<f64>)> {
        let (k, d) = (self.components(), self.dim());
        anyhow::ensure!(weights.len() == k, "got {} weights for a mixture of {k} components", weights.len());
        anyhow::ensure!(weights.iter().all(|w| w.is_finite() && *w >= 0.0), "weights must be finite and non-negative: {weights:?}");
        let total: f64 = weights.iter().sum();
        anyhow::ensure!(total > 0.0, "the weights sum to zero");
        let means = self.means.to_device(&Device::Cpu)?.to_vec2::<f64>()?;
        let mut mean = vec![0.0; d];
        for (mu, w) in means.iter().zip(weights) {
            mean.iter_mut().zip(mu).for_each(|(m, x)| *m += w / total * x);
        }
        let mut cov = vec![0.0; d * d];
        for (mu, w) in means.iter().zip(weights) {
            let diff: Vec<f64> = mu.iter().zip(&mean).map(|(x, m)| x - m).collect();
            for (row, di) in cov.chunks_exact_mut(d).zip(&diff) {
                let scale = w / total * di;
                row.iter_mut().zip(&diff).for_each(|(c, dj)| *c += scale * dj);
            }
        }
        (0..d).for_each(|i| cov[i * d + i] += self.std * self.std);
        Ok((mean, cov))
    }

    /// RMS distance, in units of the component std, within which an image counts as lying in a component:
    /// true samples sit at about 1 (the chi-square mean), an average of two distinct means far outside.
    pub const MODE_RADIUS: f64 = 2.0;

    /// The component each image of `x0` (`[B, C, H, W]`) lies in: the most likely one under the full mixture,
    /// if the image's RMS distance to its mean is within [`Mixture::MODE_RADIUS`] stds; else `None`.
    pub fn mode_of(&self, x0: &Tensor) -> boot_sdk::Result<Vec<Option<usize>>> {
        let nearest = self.most_likely_component(x0)?;
        let x = self.flat(x0)?;
        let limit = (Self::MODE_RADIUS * self.std).powi(2);
        nearest
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let d2 = (x.get(i)? - self.means.get(k)?)?.sqr()?.mean_all()?.to_scalar::<f64>()?;
                Ok((d2 <= limit).then_some(k))
            })
            .collect()
    }

    /// The most likely component of each image of `x0` (`[B, C, H, W]`) under the full mixture.
    pub fn most_likely_component(&self, x0: &Tensor) -> boot_sdk::Result<Vec<usize>> {
        let b = x0.dim(0)?;
        let x = self.flat(x0)?;
        let s2 = self.std * self.std;
        let logits = self.log_joint(&x, &vec![1.0; b], &vec![s2; b], &self.log_prior(None, b)?)?;
        Ok(logits
            .to_vec2::<f64>()?
            .iter()
            .map(|row| row.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (k, &v)| if v > best.1 { (k, v) } else { best }).0)
            .collect())
    }

    /// `[B, D]` f64 view of images `[B, C, H, W]` of this mixture's shape.
    fn flat(&self, x: &Tensor) -> boot_sdk::Result<Tensor> {
        let dims = x.dims();
        anyhow::ensure!(
            dims.len() == 4 && dims[1..] == self.shape,
            "analytic mixture: expected images [B, {}, {}, {}], got {dims:?}",
            self.shape[0],
            self.shape[1],
            self.shape[2]
        );
        Ok(x.to_device(self.means.device())?.to_dtype(DType::F64)?.reshape((dims[0], self.dim()))?)
    }

    /// `[B, 1]` column of per-sample values.
    fn column(&self, v: &[f64]) -> boot_sdk::Result<Tensor> {
        Ok(Tensor::from_slice(v, (v.len(), 1), self.means.device())?)
    }

    /// `[B, K]` log joint `log prior_k - ||x - alpha mu_k||^2 / (2 var)`, up to a per-sample constant, with the
    /// squared distances expanded as `||x||^2 - 2 alpha x.mu_k + alpha^2 ||mu_k||^2` (one matmul).
    fn log_joint(&self, x: &Tensor, alpha: &[f64], var: &[f64], log_prior: &Tensor) -> boot_sdk::Result<Tensor> {
        let b = x.dim(0)?;
        anyhow::ensure!(alpha.len() == b && var.len() == b, "got {} times for a batch of {b}", alpha.len());
        anyhow::ensure!(log_prior.dims() == [b, self.components()], "log prior of shape {:?} for {b} samples", log_prior.dims());
        let a = self.column(alpha)?;
        let a2 = self.column(&alpha.iter().map(|a| a * a).collect::<Vec<_>>())?;
        let inv2var = self.column(&var.iter().map(|v| -0.5 / v).collect::<Vec<_>>())?;
        let cross = x.matmul(&self.means.t()?)?.broadcast_mul(&a)?;
        let sq = (x.sqr()?.sum_keepdim(1)?.broadcast_sub(&(cross * 2.0)?)? + a2.broadcast_mul(&self.mean_sq)?)?.relu()?;
        Ok((sq.broadcast_mul(&inv2var)? + log_prior)?)
    }
}

/// `log sum exp` of finite or `-inf` values, stable.
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// `[B, 1]` row-wise `log sum exp` of `[B, K]` logits (each row has a finite entry), stable.
fn row_log_sum_exp(logits: &Tensor) -> boot_sdk::Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?;
    Ok((logits.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?.log()? + max)?)
}

/// All values of a tensor as f64, or an [`InputError`] naming the file and tensor.
fn values(t: &Tensor, file: &str, name: &str) -> boot_sdk::Result<Vec<f64>> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| InputError::new(file, format!("tensor `{name}`"), format!("cannot read as numbers ({:?}): {e}", t.dtype())).into())
}

/// Class ids from numbers that must be non-negative integers.
fn class_ids(v: &[f64], file: &str) -> boot_sdk::Result<Vec<u32>> {
    v.iter()
        .enumerate()
        .map(|(i, &c)| {
            if c >= 0.0 && c.fract() == 0.0 && c <= u32::MAX as f64 {
                Ok(c as u32)
            } else {
                Err(InputError::new(file, "tensor `classes`", format!("entry {i} is {c}, not a non-negative integer class id")).into())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Cosine, TempDir};
    use boot_sdk::rand::Rng;
    use boot_sdk::rand_distr::StandardNormal;
    use boot_sdk::rng::rng_for;
    use boot_sdk::{NoiseSchedule, Times};

    /// Three components over 1x2x2 images, std 0.4, unequal weights.
    fn small() -> Mixture {
        let means = vec![1.0, -0.5, 0.3, 0.8, -1.0, 0.2, -0.4, 0.6, 0.1, 0.9, 1.1, -0.7];
        Mixture::new([1, 2, 2], means, &[0.2, 0.5, 0.3], 0.4, None, &Device::Cpu).expect("valid mixture")
    }

    fn images(v: Vec<f64>, shape: [usize; 3]) -> Tensor {
        let b = v.len() / shape.iter().product::<usize>();
        Tensor::from_vec(v, (b, shape[0], shape[1], shape[2]), &Device::Cpu).expect("tensor")
    }

    /// The pixels of one draw from the mixture with component `means`, `weights` and `std`.
    fn draw(m: &[Vec<f64>], weights: &[f64], std: f64, rng: &mut impl Rng) -> Vec<f64> {
        let u: f64 = rng.random();
        let mut k = 0;
        let mut acc = weights[0];
        while u > acc && k + 1 < weights.len() {
            k += 1;
            acc += weights[k];
        }
        m[k].iter().map(|mu| mu + std * rng.sample::<f64, _>(StandardNormal)).collect()
    }

    #[test]
    fn posterior_mean_matches_monte_carlo() -> boot_sdk::Result<()> {
        let mix = small();
        let means: Vec<Vec<f64>> = mix.means()?.reshape((3, 4))?.to_vec2()?;
        let weights = mix.weights();
        let mut rng = rng_for(11);
        let n = 200_000;
        let prior: Vec<Vec<f64>> = (0..n).map(|_| draw(&means, &weights, mix.std(), &mut rng)).collect();
        for &t in &[0.2, 0.5, 0.8] {
            let (alpha, sigma) = (Cosine.alpha(t), Cosine.sigma(t));
            let x0 = draw(&means, &weights, mix.std(), &mut rng);
            let x_t: Vec<f64> = x0.iter().map(|x| alpha * x + sigma * rng.sample::<f64, _>(StandardNormal)).collect();
            let exact = mix.posterior_mean(&images(x_t.clone(), [1, 2, 2]), &[alpha], &[sigma], &mix.log_prior(None, 1)?)?;
            let exact = exact.flatten_all()?.to_vec1::<f64>()?;
            // Self-normalised importance sampling with the prior as proposal.
            let logw: Vec<f64> = prior
                .iter()
                .map(|x| -x.iter().zip(&x_t).map(|(a, b)| (b - alpha * a).powi(2)).sum::<f64>() / (2.0 * sigma * sigma))
                .collect();
            let max = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = logw.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = w.iter().sum();
            for d in 0..4 {
                let mc: f64 = prior.iter().zip(&w).map(|(x, w)| w * x[d]).sum::<f64>() / total;
                let se = (prior.iter().zip(&w).map(|(x, w)| (w * (x[d] - mc)).powi(2)).sum::<f64>()).sqrt() / total;
                assert!((exact[d] - mc).abs() < 5.0 * se + 1e-9, "t={t} dim {d}: exact {} vs MC {mc} +- {se}", exact[d]);
            }
        }
        Ok(())
    }

    #[test]
    fn conditional_posterior_only_uses_the_class_components() -> boot_sdk::Result<()> {
        let means: Vec<f64> = (0..16).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.4).collect();
        let weights = [0.1, 0.3, 0.4, 0.2];
        let mix = Mixture::new([1, 2, 2], means.clone(), &weights, 0.3, Some(vec![0, 0, 1, 1]), &Device::Cpu).expect("valid");
        let class1 = Mixture::new([1, 2, 2], means[8..].to_vec(), &weights[2..], 0.3, None, &Device::Cpu).expect("valid");
        let x_t = images(vec![0.3, -0.2, 0.5, 0.1, 0.3, -0.2, 0.5, 0.1, 0.3, -0.2, 0.5, 0.1], [1, 2, 2]);
        let (alpha, sigma) = (vec![0.8; 3], vec![0.6; 3]);
        let labels = [Some(1), Some(0), None];
        let prior = mix.log_prior(Some(&labels), 3)?;
        let resp = mix.log_responsibilities(&x_t, &alpha, &sigma, &prior)?.exp()?.to_vec2::<f64>()?;
        assert_eq!((resp[0][0], resp[0][1]), (0.0, 0.0));
        assert_eq!((resp[1][2], resp[1][3]), (0.0, 0.0));
        assert!(resp[2].iter().all(|&r| r > 0.0));
        for row in &resp {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let ours = mix.posterior_mean(&x_t, &alpha, &sigma, &prior)?.flatten_all()?.to_vec1::<f64>()?;
        let sub = class1.posterior_mean(&x_t.narrow(0, 0, 1)?, &alpha[..1], &sigma[..1], &class1.log_prior(None, 1)?)?;
        for (a, b) in ours[..4].iter().zip(sub.flatten_all()?.to_vec1::<f64>()?) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(mix.log_prior(Some(&[Some(2)]), 1).is_err());
        Ok(())
    }

    #[test]
    fn density_of_one_gaussian_is_exact() -> boot_sdk::Result<()> {
        let mean = vec![0.5, -0.25, 1.0, 0.0];
        let s: f64 = 0.3;
        let mix = Mixture::new([1, 2, 2], mean.clone(), &[2.0], s, None, &Device::Cpu).expect("valid");
        let delta = [0.1, -0.2, 0.05, 0.3];
        let x: Vec<f64> = mean.iter().zip(&delta).map(|(m, d)| m + d).collect();
        let got = mix.log_density(&images(x, [1, 2, 2]), &mix.log_prior(None, 1)?)?[0];
        let sq: f64 = delta.iter().map(|d| d * d).sum();
        let expected = -0.5 * 4.0 * (2.0 * std::f64::consts::PI * s * s).ln() - sq / (2.0 * s * s);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        Ok(())
    }

    #[test]
    fn moments_match_monte_carlo() -> boot_sdk::Result<()> {
        let mix = small();
        let means: Vec<Vec<f64>> = mix.means()?.reshape((3, 4))?.to_vec2()?;
        let weights = mix.weights();
        let (mean, cov) = mix.moments(&weights)?;
        let mut rng = rng_for(12);
        let n = 200_000;
        let draws: Vec<Vec<f64>> = (0..n).map(|_| draw(&means, &weights, mix.std(), &mut rng)).collect();
        for i in 0..4 {
            let mc: f64 = draws.iter().map(|x| x[i]).sum::<f64>() / n as f64;
            assert!((mean[i] - mc).abs() < 0.01, "mean {i}: exact {} vs MC {mc}", mean[i]);
            for j in 0..4 {
                let mj: f64 = draws.iter().map(|x| x[j]).sum::<f64>() / n as f64;
                let c: f64 = draws.iter().map(|x| (x[i] - mc) * (x[j] - mj)).sum::<f64>() / (n - 1) as f64;
                assert!((cov[i * 4 + j] - c).abs() < 0.01, "cov {i},{j}: exact {} vs MC {c}", cov[i * 4 + j]);
            }
        }
        // One component alone: its mean and s^2 I.
        let (mean, cov) = mix.moments(&[0.0, 2.0, 0.0])?;
        assert_eq!(mean, means[1]);
        let s2 = mix.std() * mix.std();
        assert!((0..16).all(|i| (cov[i] - if i % 5 == 0 { s2 } else { 0.0 }).abs() < 1e-15), "{cov:?}");
        assert!(mix.moments(&[1.0, 0.0]).is_err() && mix.moments(&[0.0; 3]).is_err());
        Ok(())
    }

    #[test]
    fn modes_are_the_nearest_components() -> boot_sdk::Result<()> {
        let mix = small();
        let noise = Tensor::randn(0f64, 0.05, (3, 1, 2, 2), &Device::Cpu)?;
        assert_eq!(mix.mode_of(&(mix.means()? + noise)?)?, vec![Some(0), Some(1), Some(2)]);
        Ok(())
    }

    fn write(path: &Path, tensors: Vec<(&str, Tensor)>) {
        let map = tensors.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        boot_sdk::io::save_safetensors(path, &map, None).expect("write safetensors");
    }

    fn valid_tensors() -> Vec<(&'static str, Tensor)> {
        let dev = Device::Cpu;
        let means: Vec<f32> = (0..12).map(|i| i as f32 / 6.0 - 1.0).collect();
        vec![
            ("means", Tensor::from_vec(means, (3, 1, 2, 2), &dev).expect("t")),
            ("weights", Tensor::new(&[1f32, 2.0, 1.0], &dev).expect("t")),
            ("std", Tensor::new(0.25f32, &dev).expect("t")),
            ("classes", Tensor::new(&[0i64, 1, 1], &dev).expect("t")),
        ]
    }

    #[test]
    fn safetensors_round_trip() -> boot_sdk::Result<()> {
        let dir = TempDir::new("round-trip");
        let path = dir.0.join("mix.safetensors");
        write(&path, valid_tensors());
        let mix = Mixture::from_safetensors(&path, &Device::Cpu)?;
        assert_eq!(mix.shape(), [1, 2, 2]);
        assert_eq!(mix.weights().iter().map(|w| (w * 1e12).round() / 1e12).collect::<Vec<_>>(), vec![0.25, 0.5, 0.25]);
        assert_eq!(mix.std(), 0.25);
        assert_eq!(mix.classes(), Some(&[0u32, 1, 1][..]));
        assert_eq!(mix.num_classes(), Some(2));
        let means = mix.means()?.flatten_all()?.to_vec1::<f64>()?;
        assert!(means.iter().enumerate().all(|(i, &m)| m == (i as f32 / 6.0 - 1.0) as f64));
        // `std` of shape [1], float class ids, no classes at all.
        let mut t = valid_tensors();
        t[2] = ("std", Tensor::new(&[0.5f64], &Device::Cpu)?);
        t[3] = ("classes", Tensor::new(&[1f32, 0.0, 1.0], &Device::Cpu)?);
        write(&path, t.clone());
        assert_eq!(Mixture::from_safetensors(&path, &Device::Cpu)?.classes(), Some(&[1u32, 0, 1][..]));
        t.pop();
        write(&path, t);
        let mix = Mixture::from_safetensors(&path, &Device::Cpu)?;
        assert_eq!((mix.std(), mix.num_classes()), (0.5, None));
        Ok(())
    }

    /// The error of loading `tensors` as a mixture, after checking it is an [`InputError`] naming the file.
    fn load_error(dir: &TempDir, name: &str, tensors: Vec<(&str, Tensor)>) -> String {
        let path = dir.0.join(format!("{name}.safetensors"));
        write(&path, tensors);
        input_error_of(&path)
    }

    fn input_error_of(path: &Path) -> String {
        let err = Mixture::from_safetensors(path, &Device::Cpu).expect_err("must fail");
        assert!(err.downcast_ref::<InputError>().is_some(), "not an InputError: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    }

    #[test]
    fn invalid_files_are_input_errors_naming_file_and_tensor() -> boot_sdk::Result<()> {
        let dir = TempDir::new("invalid");
        let dev = Device::Cpu;
        let without = |name: &str| valid_tensors().into_iter().filter(|(k, _)| *k != name).collect::<Vec<_>>();
        let with = |name: &'static str, t: Tensor| {
            valid_tensors().into_iter().map(|(k, v)| if k == name { (k, t.clone()) } else { (k, v) }).collect::<Vec<_>>()
        };
        let msg = load_error(&dir, "no-weights", without("weights"));
        assert!(msg.contains("tensor `weights`") && msg.contains("missing") && msg.contains("[3]"), "{msg}");
        let msg = load_error(&dir, "no-means", without("means"));
        assert!(msg.contains("tensor `means`") && msg.contains("missing"), "{msg}");
        let msg = load_error(&dir, "wrong-shape", with("weights", Tensor::new(&[1f32, 2.0, 3.0, 4.0], &dev)?));
        assert!(msg.contains("tensor `weights`") && msg.contains("expected shape [3], found [4]"), "{msg}");
        let msg = load_error(&dir, "flat-means", with("means", Tensor::zeros((3, 4), DType::F32, &dev)?));
        assert!(msg.contains("tensor `means`") && msg.contains("[K, C, H, W], found [3, 4]"), "{msg}");
        let msg = load_error(&dir, "std-shape", with("std", Tensor::new(&[0.1f32, 0.2], &dev)?));
        assert!(msg.contains("tensor `std`") && msg.contains("found [2]"), "{msg}");
        let msg = load_error(&dir, "negative-weight", with("weights", Tensor::new(&[1f32, -2.0, 1.0], &dev)?));
        assert!(msg.contains("tensor `weights`") && msg.contains("positive"), "{msg}");
        let msg = load_error(&dir, "zero-std", with("std", Tensor::new(0f32, &dev)?));
        assert!(msg.contains("tensor `std`") && msg.contains("positive"), "{msg}");
        let msg = load_error(&dir, "fractional-class", with("classes", Tensor::new(&[0f32, 0.5, 1.0], &dev)?));
        assert!(msg.contains("tensor `classes`") && msg.contains("0.5"), "{msg}");
        let msg = load_error(&dir, "class-gap", with("classes", Tensor::new(&[0u32, 2, 2], &dev)?));
        assert!(msg.contains("tensor `classes`") && msg.contains("class 1 has no component"), "{msg}");
        let mut extra = valid_tensors();
        extra.push(("mean", Tensor::zeros(3, DType::F32, &dev)?));
        let msg = load_error(&dir, "extra", extra);
        assert!(msg.contains("tensor `mean`") && msg.contains("unexpected"), "{msg}");
        // A truncated file names the file (no tensor can be read from it).
        let path = dir.0.join("truncated.safetensors");
        write(&path, valid_tensors());
        let bytes = std::fs::read(&path)?;
        std::fs::write(&path, &bytes[..bytes.len() - 10])?;
        let msg = input_error_of(&path);
        assert!(msg.contains("truncated or corrupt"), "{msg}");
        let msg = input_error_of(&dir.0.join("absent.safetensors"));
        assert!(msg.contains("cannot read file"), "{msg}");
        Ok(())
    }

    #[test]
    fn times_drive_the_denoiser_per_sample() -> boot_sdk::Result<()> {
        // Two samples at different times give what each gives alone.
        let mix = small();
        let times = Times::new(&Cosine, vec![0.3, 0.9]);
        let x_t = images(vec![0.2, -0.1, 0.4, 0.0, -0.3, 0.5, 0.1, 0.2], [1, 2, 2]);
        let both = mix.posterior_mean(&x_t, &times.alpha, &times.sigma, &mix.log_prior(None, 2)?)?;
        for i in 0..2 {
            let one = mix.posterior_mean(&x_t.narrow(0, i, 1)?, &times.alpha[i..=i], &times.sigma[i..=i], &mix.log_prior(None, 1)?)?;
            let diff = (both.narrow(0, i, 1)? - one)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-14);
        }
        Ok(())
    }
}
