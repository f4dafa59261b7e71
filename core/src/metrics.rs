//! Sample metrics: distance to the teacher's ODE solution, and (for teachers with a known density) exact
//! negative log-likelihood and mode coverage.

use std::collections::BTreeSet;

use boot_sdk::candle::{Tensor, D};
use boot_sdk::{Cond, ExactDensity};

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

/// Accumulates per-sample metrics over batches.
#[derive(Debug, Default)]
pub struct MetricsAccumulator {
    ode_mse: Vec<f64>,
    nll: Vec<f64>,
    hit: BTreeSet<usize>,
    reachable: BTreeSet<usize>,
}

impl MetricsAccumulator {
    /// Adds a batch of samples with their reference and conditioning.
    pub fn add(&mut self, samples: &Tensor, reference: &Tensor, cond: &Cond, density: Option<&dyn ExactDensity>) -> boot_sdk::Result<()> {
        self.ode_mse.extend(ode_mse(samples, reference)?);
        if let Some(d) = density {
            self.nll.extend(d.nll_per_dim(samples, cond)?);
            self.hit.extend(d.mode_of(samples)?.into_iter().flatten());
            self.reachable.extend(d.reachable_modes(cond)?);
        }
        Ok(())
    }

    /// The metrics as a JSON object: `ode_mse`, and `nll` and `mode_coverage` where a density is known.
    pub fn finish(&self) -> boot_sdk::serde_json::Value {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut obj = boot_sdk::serde_json::Map::new();
        obj.insert("samples".into(), self.ode_mse.len().into());
        obj.insert("ode_mse".into(), mean(&self.ode_mse).into());
        if !self.nll.is_empty() {
            obj.insert("nll".into(), mean(&self.nll).into());
            obj.insert("mode_coverage".into(), mode_coverage(&self.hit, &self.reachable).into());
        }
        obj.into()
    }
}
