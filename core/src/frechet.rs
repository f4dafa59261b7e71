//! The Fréchet distance between Gaussians, `||m1 - m2||^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})`, and
//! the Gaussian fit (mean, covariance) of a set of samples it is applied to.

use boot_sdk::candle::{DType, Device, Tensor};

use crate::sym_eigen::{psd_sqrt, SymEigen};

/// Running sums for the mean and covariance of flattened samples, in f64.
#[derive(Debug, Clone, Default)]
pub struct GaussianFit {
    count: usize,
    sum: Vec<f64>,
    /// Row-major `D x D` sum of `x x^T`.
    outer: Vec<f64>,
}

impl GaussianFit {
    /// Adds a batch `[B, ...]` (flattened to `[B, D]`).
    pub fn add(&mut self, x: &Tensor) -> boot_sdk::Result<()> {
        let x = x.flatten_from(1)?.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
        let (b, d) = x.dims2()?;
        if self.count == 0 {
            (self.sum, self.outer) = (vec![0.0; d], vec![0.0; d * d]);
        }
        anyhow::ensure!(self.sum.len() == d, "Gaussian fit of {}-dimensional samples got {d} dimensions", self.sum.len());
        let sum = x.sum(0)?.to_vec1::<f64>()?;
        let outer = x.t()?.matmul(&x)?.flatten_all()?.to_vec1::<f64>()?;
        self.sum.iter_mut().zip(sum).for_each(|(a, s)| *a += s);
        self.outer.iter_mut().zip(outer).for_each(|(a, s)| *a += s);
        self.count += b;
        Ok(())
    }

    /// Number of samples added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Mean `[D]` and unbiased covariance `[D * D]` (row-major, divided by `N - 1` as `numpy.cov`).
    pub fn mean_cov(&self) -> boot_sdk::Result<(Vec<f64>, Vec<f64>)> {
        let n = self.count;
        anyhow::ensure!(n >= 2, "a Gaussian fit needs at least 2 samples, got {n}");
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n as f64).collect();
        let d = mean.len();
        let cov = (0..d * d).map(|i| (self.outer[i] - n as f64 * mean[i / d] * mean[i % d]) / (n - 1) as f64).collect();
        Ok((mean, cov))
    }
}

/// The Fréchet distance between `N(m1, c1)` and `N(m2, c2)` (means `[D]`, covariances `[D * D]` row-major).
/// The trace of the matrix square root goes through symmetric eigendecompositions in f64 (of `c1`, then of
/// `c1^{1/2} c2 c1^{1/2}`), so it stays real; pass the better-conditioned covariance as `c1`. Each zero
/// eigenvalue of `c1^{1/2} c2 c1^{1/2}` adds about `1e-8` (the square root of its rounding).
pub fn frechet_distance(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64]) -> boot_sdk::Result<f64> {
    let d = m1.len();
    anyhow::ensure!(
        m2.len() == d && c1.len() == d * d && c2.len() == d * d,
        "Fréchet distance: means of {d} and {} dimensions, covariances of {} and {} entries",
        m2.len(),
        c1.len(),
        c2.len()
    );
    let mean_term: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let trace = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    let root = Tensor::from_vec(psd_sqrt(c1, d)?, (d, d), &Device::Cpu)?;
    let inner = root.matmul(&Tensor::from_slice(c2, (d, d), &Device::Cpu)?)?.matmul(&root)?;
    let eig = SymEigen::new(&inner.flatten_all()?.to_vec1::<f64>()?, d)?;
    let trace_root: f64 = eig.values.iter().map(|l| l.max(0.0).sqrt()).sum();
    Ok(mean_term + trace(c1) + trace(c2) - 2.0 * trace_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isotropic(d: usize, s: f64) -> Vec<f64> {
        (0..d * d).map(|i| if i % (d + 1) == 0 { s * s } else { 0.0 }).collect()
    }

    #[test]
    fn isotropic_gaussians_match_the_closed_form() -> boot_sdk::Result<()> {
        let d = 12;
        let m1: Vec<f64> = (0..d).map(|i| i as f64 * 0.1).collect();
        let m2: Vec<f64> = (0..d).map(|i| 1.0 - i as f64 * 0.05).collect();
        let (s1, s2) = (0.3, 1.7);
        let dm: f64 = m1.iter().zip(&m2).map(|(a, b)| (a - b).powi(2)).sum();
        let fd = frechet_distance(&m1, &isotropic(d, s1), &m2, &isotropic(d, s2))?;
        let expected = dm + d as f64 * (s1 - s2).powi(2);
        assert!((fd - expected).abs() < 1e-10 * expected, "{fd} vs {expected}");
        Ok(())
    }

    #[test]
    fn non_commuting_covariances_match_the_2d_closed_form() -> boot_sdk::Result<()> {
        // For 2 x 2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here M = C1^{1/2} C2 C1^{1/2} has
        // tr M = tr(C1 C2) and det M = det C1 det C2.
        let c1: [f64; 4] = [2.0, 0.0, 0.0, 0.5];
        let c2: [f64; 4] = [1.0, 0.6, 0.6, 0.8];
        let tr_c1c2 = c1[0] * c2[0] + c1[3] * c2[3];
        let det = (c1[0] * c1[3]) * (c2[0] * c2[3] - c2[1] * c2[2]);
        let expected = 1.0 + (c1[0] + c1[3]) + (c2[0] + c2[3]) - 2.0 * (tr_c1c2 + 2.0 * det.sqrt()).sqrt();
        let fd = frechet_distance(&[1.0, 0.0], &c1, &[0.0, 0.0], &c2)?;
        assert!((fd - expected).abs() < 1e-12, "{fd} vs {expected}");
        Ok(())
    }

    #[test]
    fn a_gaussian_is_at_distance_zero_from_itself() -> boot_sdk::Result<()> {
        let x = (Tensor::randn(0f64, 1.0, (500, 8), &Device::Cpu)? + 0.5)?;
        let mut fit = GaussianFit::default();
        fit.add(&x.narrow(0, 0, 200)?)?;
        fit.add(&x.narrow(0, 200, 300)?)?;
        assert_eq!(fit.count(), 500);
        let (m, c) = fit.mean_cov()?;
        let fd = frechet_distance(&m, &c, &m, &c)?;
        assert!(fd.abs() < 1e-12, "{fd}");
        // A singular covariance (rank 3 in 8 dimensions): the zero eigenvalues' rounding (~1e-16) costs their
        // square roots (~1e-8) each.
        let basis = Tensor::randn(0f64, 1.0, (3, 8), &Device::Cpu)?;
        let mut flat = GaussianFit::default();
        flat.add(&Tensor::randn(0f64, 1.0, (500, 3), &Device::Cpu)?.matmul(&basis)?)?;
        let (m3, c3) = flat.mean_cov()?;
        let fd = frechet_distance(&m3, &c3, &m3, &c3)?;
        assert!(fd.abs() < 1e-6, "{fd}");
        // The fit is numpy's mean and cov.
        let mean = x.mean(0)?.to_vec1::<f64>()?;
        assert!(m.iter().zip(&mean).all(|(a, b)| (a - b).abs() < 1e-12));
        let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
        let cov = (centred.t()?.matmul(&centred)? / 499.0)?.flatten_all()?.to_vec1::<f64>()?;
        assert!(c.iter().zip(&cov).all(|(a, b)| (a - b).abs() < 1e-10));
        Ok(())
    }
}
