//! Sample metrics: distance to the teacher's ODE solution, and (for teachers with a known density) exact
//! negative log-likelihood, mode coverage, the Fréchet distance to the true distribution and the total
//! variation between the samples' mode frequencies and the true mode weights.

use std::collections::BTreeSet;

use boot_sdk::candle::{Tensor, D};
use boot_sdk::{Cond, ExactDensity};

use crate::gaussian_fd::{frechet_distance, GaussianFit, MomentAccumulator};

/// Mean squared distance of each sample to the reference from the same noise, one value per sample.
pub fn ode_mse(samples: &Tensor, reference: &Tensor) -> boot_sdk::Result<Vec<f64>> {
    let per = (samples - reference)?.sqr()?.flatten_from(1)?.mean(D::Minus1)?;
    Ok(per.to_dtype(boot_sdk::candle::DType::F64)?.to_vec1::<f64>()?)
}

/// Share of the modes reachable under the batches' conditionings that received at least one sample (lying in
/// the mode's typical region).
pub fn mode_coverage(hit: &BTreeSet<usize>, reachable: &BTreeSet<usize>) -> f64 {
    if reachable.is_empty() {
        return 0.0;
    }
    hit.intersection(reachable).count() as f64 / reachable.len() as f64
}

/// Total-variation distance `1/2 sum |p - q|` between the samples' mode frequencies (`counts`: one per mode,
/// then the samples in no mode) and the mode `weights` (one per mode, summing to 1; no mode has weight 0).
pub fn mode_tv(counts: &[usize], weights: &[f64]) -> f64 {
    let n = counts.iter().sum::<usize>().max(1) as f64;
    let target = weights.iter().copied().chain(std::iter::once(0.0));
    0.5 * counts.iter().map(|&c| c as f64 / n).zip(target).map(|(p, q)| (p - q).abs()).sum::<f64>()
}

/// Accumulates per-sample metrics over batches.
#[derive(Debug, Default)]
pub struct MetricsAccumulator {
    ode_mse: Vec<f64>,
    nll: Vec<f64>,
    hit: BTreeSet<usize>,
    reachable: BTreeSet<usize>,
    /// Moments of the flattened samples (with a known density).
    fit: MomentAccumulator,
    /// Samples per mode, the last entry counting the samples in no mode.
    mode_counts: Vec<usize>,
    /// Sum over the samples of the mode weights they are drawn with.
    weight_sums: Vec<f64>,
}

impl MetricsAccumulator {
    /// Adds a batch of samples with their reference and conditioning.
    pub fn add(&mut self, samples: &Tensor, reference: &Tensor, cond: &Cond, density: Option<&dyn ExactDensity>) -> boot_sdk::Result<()> {
        self.ode_mse.extend(ode_mse(samples, reference)?);
        if let Some(d) = density {
            self.nll.extend(d.nll_per_dim(samples, cond)?);
            let modes = d.mode_of(samples)?;
            self.hit.extend(modes.iter().flatten());
            self.reachable.extend(d.reachable_modes(cond)?);
            for row in d.mode_weights(cond, samples.dim(0)?)? {
                self.weight_sums.resize(row.len(), 0.0);
                self.weight_sums.iter_mut().zip(row).for_each(|(s, w)| *s += w);
            }
            self.mode_counts.resize(self.weight_sums.len() + 1, 0);
            for mode in modes {
                let k = mode.unwrap_or(self.weight_sums.len());
                anyhow::ensure!(k < self.mode_counts.len(), "mode {k} of a density with {} modes", self.weight_sums.len());
                self.mode_counts[k] += 1;
            }
            self.fit.add(&samples.flatten_from(1)?)?;
        }
        Ok(())
    }

    /// The true mode weights of the samples seen: the mean over the samples of the weights each was drawn with
    /// (for a conditional run, the class mixture of each sample's label, averaged over the labels).
    fn target_weights(&self) -> Vec<f64> {
        let n = self.fit.count().max(1) as f64;
        self.weight_sums.iter().map(|s| s / n).collect()
    }

    /// The metrics as a JSON object: `ode_mse`, and where a density is known `nll`, `mode_coverage`,
    /// `fd_exact` (Fréchet distance of the samples' Gaussian fit to the true mean and covariance; from 2
    /// samples on) and `mode_tv`.
    pub fn finish(&self, density: Option<&dyn ExactDensity>) -> boot_sdk::Result<boot_sdk::serde_json::Value> {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut obj = boot_sdk::serde_json::Map::new();
        obj.insert("samples".into(), self.ode_mse.len().into());
        obj.insert("ode_mse".into(), mean(&self.ode_mse).into());
        if let (Some(d), false) = (density, self.nll.is_empty()) {
            obj.insert("nll".into(), mean(&self.nll).into());
            obj.insert("mode_coverage".into(), mode_coverage(&self.hit, &self.reachable).into());
            let target = self.target_weights();
            if self.fit.count() >= 2 {
                // The true covariance (full rank: s^2 I + ...) goes first: its square root is the one taken.
                let (true_mean, true_cov) = d.moments(&target)?;
                let exact = GaussianFit::from_moments(true_mean, &true_cov, self.fit.count());
                obj.insert("fd_exact".into(), frechet_distance(&exact, &self.fit.finish()?).into());
            }
            obj.insert("mode_tv".into(), mode_tv(&self.mode_counts, &target).into());
        }
        Ok(obj.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_tv_of_the_exact_weights_is_zero() {
        assert_eq!(mode_tv(&[25, 50, 25, 0], &[0.25, 0.5, 0.25]), 0.0);
        // All in no mode: as far as can be.
        assert_eq!(mode_tv(&[0, 0, 0, 10], &[0.25, 0.5, 0.25]), 1.0);
        // Half the mass moved from mode 1 to mode 0.
        assert!((mode_tv(&[50, 50, 0], &[0.0, 1.0]) - 0.5).abs() < 1e-15);
    }
}
