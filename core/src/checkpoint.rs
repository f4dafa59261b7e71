//! Checkpoints: student, EMA, optimizer moments, step and seed in one safetensors file, written atomically,
//! the last N kept. Randomness is a pure function of (seed, step, sample index), so the step and seed are the
//! whole RNG state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use boot_sdk::candle::Tensor;
use boot_sdk::candle_nn::VarMap;
use boot_sdk::io::{load_safetensors_with_metadata, save_safetensors};
use boot_sdk::InputError;

use crate::optim::{sorted_vars, AdamW};

const FORMAT: &str = "boot-checkpoint-1";

/// The folder checkpoints of a run live in.
pub fn dir(out_dir: &Path) -> PathBuf {
    out_dir.join("checkpoints")
}

fn file_name(step: u64) -> String {
    format!("step-{step:08}.safetensors")
}

/// Checkpoint files of a run, oldest first.
pub fn list(out_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir(out_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("step-")?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The newest checkpoint of a run.
pub fn latest(out_dir: &Path) -> Option<PathBuf> {
    list(out_dir).pop().map(|(_, p)| p)
}

/// Saves a checkpoint after `step` completed steps and deletes all but the newest `keep`.
pub fn save(out_dir: &Path, step: u64, seed: u64, student: &VarMap, ema: &VarMap, optim: &AdamW, keep: usize) -> boot_sdk::Result<PathBuf> {
    let mut tensors: HashMap<String, Tensor> = optim.state();
    for (prefix, vars) in [("student", student), ("ema", ema)] {
        for (name, var) in sorted_vars(vars) {
            tensors.insert(format!("{prefix}.{name}"), var.as_tensor().clone());
        }
    }
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), step.to_string()),
        ("seed".to_string(), seed.to_string()),
        ("optimizer_steps".to_string(), optim.steps().to_string()),
    ]);
    let path = dir(out_dir).join(file_name(step));
    save_safetensors(&path, &tensors, Some(meta))?;
    let all = list(out_dir);
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_file(old).map_err(|e| anyhow::anyhow!("removing old checkpoint {}: {e}", old.display()))?;
    }
    Ok(path)
}

/// A loaded checkpoint.
pub struct Checkpoint {
    path: String,
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
}

impl Checkpoint {
    /// Reads a checkpoint file.
    pub fn read(path: &Path, device: &boot_sdk::candle::Device) -> boot_sdk::Result<Self> {
        let (tensors, meta) = load_safetensors_with_metadata(path, device)?;
        let shown = path.display().to_string();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(InputError::new(shown, "format", format!("not a boot checkpoint (expected `{FORMAT}` in the metadata)")).into());
        }
        Ok(Self { path: shown, tensors, meta })
    }

    fn number(&self, key: &str) -> boot_sdk::Result<u64> {
        self.meta
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| InputError::new(self.path.clone(), key, "missing or not a number").into())
    }

    /// Completed steps when it was written.
    pub fn step(&self) -> boot_sdk::Result<u64> {
        self.number("step")
    }

    /// Run seed it was written with.
    pub fn seed(&self) -> boot_sdk::Result<u64> {
        self.number("seed")
    }

    /// Copies the `prefix` weights (`student` or `ema`) into `vars`, checking names and shapes.
    pub fn restore_vars(&self, prefix: &str, vars: &VarMap) -> boot_sdk::Result<()> {
        for (name, var) in sorted_vars(vars) {
            let key = format!("{prefix}.{name}");
            match self.tensors.get(&key) {
                None => return Err(InputError::new(self.path.clone(), format!("tensor `{key}`"), format!("missing (expected shape {:?})", var.dims())).into()),
                Some(t) if t.dims() != var.dims() => {
                    return Err(InputError::new(self.path.clone(), format!("tensor `{key}`"), format!("expected shape {:?}, found {:?}", var.dims(), t.dims())).into())
                }
                Some(t) => var.set(&t.to_dtype(var.dtype())?)?,
            }
        }
        Ok(())
    }

    /// Restores the optimizer's moments and update count.
    pub fn restore_optimizer(&self, optim: &mut AdamW) -> boot_sdk::Result<()> {
        optim.load_state(&self.tensors, self.number("optimizer_steps")?)
    }
}
