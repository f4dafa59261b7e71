//! Gaussian fits of feature sets and the Fréchet distance between them (FID's formula):
//! `|mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))`, all in `f64`.
//!
//! `tr((S_1 S_2)^(1/2)) = tr((A S_2 A)^(1/2))` with `A = S_1^(1/2)`: both square roots are taken of symmetric
//! positive semi-definite matrices through a symmetric eigen-decomposition (negative round-off eigenvalues
//! clamped to 0), which is robust where scipy's `sqrtm` of the non-symmetric product can turn complex.
//! `A` belongs to the reference statistics and is computed once ([`FrechetReference`]).

use boot_sdk::candle::{DType, Device, Tensor};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (unbiased, `n - 1`) of `count` feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianFit {
    /// Mean `[d]`.
    pub mean: DVector<f64>,
    /// Covariance `[d, d]`.
    pub cov: DMatrix<f64>,
    /// Number of vectors.
    pub count: usize,
}

/// Accumulates first and second moments of feature batches in `f64`, shifted by the first batch's mean
/// (no cancellation when the features sit far from 0).
#[derive(Debug, Default)]
pub struct MomentAccumulator {
    shift: Option<Tensor>,
    sum: Option<Tensor>,
    outer: Option<Tensor>,
    count: usize,
}

impl MomentAccumulator {
    /// Adds a batch `[B, d]` of features.
    pub fn add(&mut self, features: &Tensor) -> boot_sdk::Result<()> {
        let x = features.to_dtype(DType::F64)?;
        let shift = match &self.shift {
            Some(s) => s.clone(),
            None => self.shift.insert(x.mean_keepdim(0)?).clone(),
        };
        let xc = x.broadcast_sub(&shift)?;
        let (sum, outer) = (xc.sum_keepdim(0)?, xc.t()?.matmul(&xc)?);
        self.sum = Some(match self.sum.take() { Some(s) => (s + sum)?, None => sum });
        self.outer = Some(match self.outer.take() { Some(o) => (o + outer)?, None => outer });
        self.count += x.dim(0)?;
        Ok(())
    }

    /// Number of vectors added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The Gaussian fit; at least two vectors are needed for a covariance.
    pub fn finish(&self) -> boot_sdk::Result<GaussianFit> {
        let (Some(shift), Some(sum), Some(outer)) = (&self.shift, &self.sum, &self.outer) else {
            return Err(boot_sdk::anyhow::anyhow!("Fréchet distance: no features"));
        };
        let n = self.count;
        if n < 2 {
            return Err(boot_sdk::anyhow::anyhow!("Fréchet distance: {n} feature vector(s), a covariance needs 2"));
        }
        let d = sum.dim(1)?;
        let mc = (sum / n as f64)?;
        let cov = ((outer - mc.t()?.matmul(&mc)?.affine(n as f64, 0.0)?)? / (n - 1) as f64)?;
        let mean = (mc + shift)?.flatten_all()?.to_vec1::<f64>()?;
        let cov = DMatrix::from_row_slice(d, d, &cov.flatten_all()?.to_vec1::<f64>()?);
        Ok(GaussianFit { mean: DVector::from_vec(mean), cov: symmetrized(cov), count: n })
    }
}

impl GaussianFit {
    /// A Gaussian from its mean `[d]` and row-major covariance `[d * d]` (an exact one, say, with the
    /// `count` of the fit it is compared with).
    pub fn from_moments(mean: Vec<f64>, cov: &[f64], count: usize) -> Self {
        let d = mean.len();
        Self { mean: DVector::from_vec(mean), cov: symmetrized(DMatrix::from_row_slice(d, d, cov)), count }
    }

    /// Feature width.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `mean` `[d]` and `cov` `[d, d]` as `f64` tensors.
    pub fn to_tensors(&self, device: &Device) -> boot_sdk::Result<(Tensor, Tensor)> {
        let d = self.dim();
        let mean = Tensor::from_vec(self.mean.as_slice().to_vec(), d, device)?;
        let cov = Tensor::from_vec(self.cov.transpose().as_slice().to_vec(), (d, d), device)?;
        Ok((mean, cov))
    }

    /// From `mean` `[d]` and `cov` `[d, d]` tensors (any float dtype).
    pub fn from_tensors(mean: &Tensor, cov: &Tensor, count: usize) -> boot_sdk::Result<Self> {
        let d = mean.dim(0)?;
        let mean = mean.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let cov = cov.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        Ok(Self { mean: DVector::from_vec(mean), cov: symmetrized(DMatrix::from_row_slice(d, d, &cov)), count })
    }
}

/// `(m + m^T) / 2`.
fn symmetrized(m: DMatrix<f64>) -> DMatrix<f64> {
    (&m + m.transpose()) * 0.5
}

/// The eigenvalues of a symmetric matrix, negative round-off clamped to 0, and its eigenvectors.
fn psd_eigen(m: DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let e = SymmetricEigen::new(m);
    (e.eigenvalues.map(|l| l.max(0.0)), e.eigenvectors)
}

/// The symmetric square root of a symmetric positive semi-definite matrix.
pub fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let (l, u) = psd_eigen(symmetrized(m.clone()));
    let scaled = &u * DMatrix::from_diagonal(&l.map(f64::sqrt));
    symmetrized(scaled * u.transpose())
}

/// Reference statistics with the square root of their covariance, ready to be compared with many fits.
#[derive(Debug, Clone)]
pub struct FrechetReference {
    fit: GaussianFit,
    sqrt_cov: DMatrix<f64>,
}

impl FrechetReference {
    /// Precomputes `S^(1/2)` of `fit`.
    pub fn new(fit: GaussianFit) -> Self {
        let sqrt_cov = sqrt_psd(&fit.cov);
        Self { fit, sqrt_cov }
    }

    /// The reference fit.
    pub fn fit(&self) -> &GaussianFit {
        &self.fit
    }

    /// The Fréchet distance of `other` to the reference (same feature width), clamped at 0 against round-off.
    pub fn distance(&self, other: &GaussianFit) -> f64 {
        let a = &self.sqrt_cov;
        let inner = symmetrized(a * &other.cov * a);
        let (l, _) = psd_eigen(inner);
        let tr_sqrt: f64 = l.iter().map(|v| v.sqrt()).sum();
        let dm = &self.fit.mean - &other.mean;
        (dm.dot(&dm) + self.fit.cov.trace() + other.cov.trace() - 2.0 * tr_sqrt).max(0.0)
    }
}

/// The Fréchet distance between two Gaussian fits.
pub fn frechet_distance(a: &GaussianFit, b: &GaussianFit) -> f64 {
    FrechetReference::new(a.clone()).distance(b)
}
