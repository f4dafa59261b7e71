//! AdamW over the student's variables, with state that checkpoints save and restore exactly.

use std::collections::HashMap;

use boot_sdk::candle::backprop::GradStore;
use boot_sdk::candle::{Tensor, Var};
use boot_sdk::candle_nn::VarMap;

/// AdamW hyper-parameters (the paper: no weight decay, no warm-up, constant learning rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub grad_clip: Option<f64>,
}

/// AdamW with first and second moments per variable, in a fixed (name) order.
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: u64,
}

impl AdamW {
    /// An optimizer over every variable of `varmap`, moments at zero.
    pub fn new(varmap: &VarMap, cfg: AdamWConfig) -> boot_sdk::Result<Self> {
        let params = sorted_vars(varmap);
        let m = params.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>, _>>()?;
        let v = params.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { cfg, params, m, v, steps: 0 })
    }

    /// Number of updates made so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update from `grads`; returns the global gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore) -> boot_sdk::Result<f64> {
        let mut gs = Vec::with_capacity(self.params.len());
        let mut sq = 0f64;
        for (_, var) in &self.params {
            let g = match grads.get(var.as_tensor()) {
                Some(g) => g.clone(),
                None => var.zeros_like()?,
            };
            sq += g.sqr()?.sum_all()?.to_dtype(boot_sdk::candle::DType::F64)?.to_scalar::<f64>()?;
            gs.push(g);
        }
        let norm = sq.sqrt();
        let scale = match self.cfg.grad_clip {
            Some(c) if norm > c => c / norm,
            _ => 1.0,
        };
        self.steps += 1;
        let AdamWConfig { lr, beta1, beta2, eps, weight_decay, .. } = self.cfg;
        let bias1 = 1.0 - beta1.powi(self.steps as i32);
        let bias2 = 1.0 - beta2.powi(self.steps as i32);
        for (i, (_, var)) in self.params.iter().enumerate() {
            let g = if scale != 1.0 { (&gs[i] * scale)? } else { gs[i].clone() };
            let m = ((&self.m[i] * beta1)? + (&g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let update = ((&m / bias1)? / ((&v / bias2)?.sqrt()? + eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }

    /// The moments as named tensors (`adam.m.<var>`, `adam.v.<var>`).
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments and the update count saved by [`AdamW::state`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> boot_sdk::Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("adam.{kind}.{name}");
                let t = tensors.get(&key).ok_or_else(|| anyhow::anyhow!("checkpoint lacks tensor `{key}`"))?;
                anyhow::ensure!(t.dims() == var.dims(), "checkpoint tensor `{key}` has shape {:?}, expected {:?}", t.dims(), var.dims());
                *slot = t.to_device(var.device())?.to_dtype(var.dtype())?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The variables of `varmap` sorted by name, so every pass visits them in the same order.
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}
