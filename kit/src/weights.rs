//! The weight files of a diffusers / transformers component folder, as `save_pretrained` writes them: one
//! `<stem>.safetensors`, or shards named by `<stem>.safetensors.index.json`'s `weight_map`; with a variant
//! (`fp16`) the names are `<stem>.fp16.safetensors` and `<stem>.safetensors.index.fp16.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::serde_json;
use boot_sdk::InputError;

/// The file or index a component's weights are read from: `dir/<stem>[.variant].safetensors` when it
/// exists, else the shard index.
pub fn weights_file(dir: &Path, stem: &str, variant: Option<&str>) -> PathBuf {
    let single = match variant {
        Some(v) => dir.join(format!("{stem}.{v}.safetensors")),
        None => dir.join(format!("{stem}.safetensors")),
    };
    if single.exists() {
        return single;
    }
    let index = match variant {
        Some(v) => dir.join(format!("{stem}.safetensors.index.{v}.json")),
        None => dir.join(format!("{stem}.safetensors.index.json")),
    };
    if index.exists() { index } else { single }
}

/// All tensors of a component (`keep` selects by key), converted to `dtype` on `device`. Errors name the
/// missing file, the index and its key, or the shard.
pub fn load_component(dir: &Path, stem: &str, variant: Option<&str>, keep: impl Fn(&str) -> bool, dtype: DType, device: &Device) -> boot_sdk::Result<HashMap<String, Tensor>> {
    let file = weights_file(dir, stem, variant);
    let shown = file.display().to_string();
    if !file.exists() {
        return Err(InputError::new(&shown, "", "missing (neither the weights file nor a shard index)").into());
    }
    let shards: Vec<PathBuf> = if file.to_string_lossy().ends_with(".json") {
        let text = std::fs::read_to_string(&file).map_err(|e| InputError::new(&shown, "", format!("cannot read: {e}")))?;
        let index: serde_json::Value = serde_json::from_str(&text).map_err(|e| InputError::new(&shown, "", format!("not JSON: {e}")))?;
        let map = index.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| InputError::new(&shown, "weight_map", "missing or not an object"))?;
        let names: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        if map.values().any(|v| !v.is_string()) || names.is_empty() {
            return Err(InputError::new(&shown, "weight_map", "expects a non-empty map of tensor name to shard file name").into());
        }
        names.into_iter().map(|n| dir.join(n)).collect()
    } else {
        vec![file]
    };
    let mut out = HashMap::new();
    for shard in shards {
        if !shard.exists() {
            return Err(InputError::new(shard.display().to_string(), "", "missing (named by the shard index)").into());
        }
        for (k, v) in boot_sdk::io::load_safetensors(&shard, device)? {
            if keep(&k) {
                out.insert(k, v.to_dtype(dtype)?);
            }
        }
    }
    Ok(out)
}
