//! AdamW over the student's variables, with state that checkpoints save and restore exactly.

use std::collections::HashMap;

use boot_sdk::candle::backprop::GradStore;
use boot_sdk::candle::{Tensor, Var};
use boot_sdk::candle_nn::VarMap;
use boot_sdk::ops::fused_update::{adamw_step, AdamWStep};

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
        // The squared norms are summed on the device (in f64, in variable order) and read once.
        let mut sq: Option<Tensor> = None;
        for (_, var) in &self.params {
            let g = match grads.get(var.as_tensor()) {
                Some(g) => g.clone(),
                None => var.zeros_like()?,
            };
            let s = g.sqr()?.sum_all()?.to_dtype(boot_sdk::candle::DType::F64)?;
            sq = Some(match sq {
                Some(t) => (t + s)?,
                None => s,
            });
            gs.push(g);
        }
        let norm = match sq {
            Some(t) => t.to_scalar::<f64>()?.sqrt(),
            None => 0.0,
        };
        let scale = match self.cfg.grad_clip {
            Some(c) if norm > c => c / norm,
            _ => 1.0,
        };
        self.steps += 1;
        let AdamWConfig { lr, beta1, beta2, eps, weight_decay, .. } = self.cfg;
        let bias1 = 1.0 - beta1.powi(self.steps as i32);
        let bias2 = 1.0 - beta2.powi(self.steps as i32);
        let step = AdamWStep { beta1, beta2, lr, eps, decay: 1.0 - lr * weight_decay, bias1, bias2, grad_scale: scale };
        for (i, (_, var)) in self.params.iter().enumerate() {
            // In place, one kernel each for m, v and the variable (boot_sdk::ops::fused_update).
            adamw_step(var.as_tensor(), &gs[i], &self.m[i], &self.v[i], &step)?;
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
                // A copy of its own: the moments are updated in place.
                *slot = t.to_device(var.device())?.to_dtype(var.dtype())?.contiguous()?.copy()?;
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
