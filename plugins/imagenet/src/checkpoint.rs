//! Reading a guided-diffusion checkpoint: the PyTorch `.pt` state dict as `torch.save` writes it (a zip
//! archive; read with candle's pickle reader, no Python needed), or a `.safetensors` file with the same keys.

use std::collections::HashMap;
use std::path::Path;

use boot_sdk::candle::{Device, Tensor};
use boot_sdk::InputError;

/// Every tensor of the checkpoint at `path`, on the CPU, by state-dict key. `.safetensors` files are read
/// as such; anything else as a PyTorch zip checkpoint, optionally the dict under `state_dict_key`.
/// A missing or unreadable file is one [`InputError`] naming it.
pub fn read_checkpoint(path: &Path, state_dict_key: Option<&str>) -> boot_sdk::Result<HashMap<String, Tensor>> {
    let shown = path.display().to_string();
    if path.extension().is_some_and(|e| e == "safetensors") {
        if state_dict_key.is_some() {
            return Err(InputError::config("teacher.state_dict_key", "only applies to PyTorch .pt checkpoints").into());
        }
        return boot_sdk::io::load_safetensors(path, &Device::Cpu);
    }
    if let Err(e) = std::fs::File::open(path) {
        return Err(InputError::new(shown, "", format!("cannot read file: {e}")).into());
    }
    let tensors = boot_sdk::candle::pickle::read_all_with_key(path, state_dict_key).map_err(|e| {
        let what = format!("{e}").lines().next().unwrap_or_default().to_string();
        InputError::new(
            shown.clone(),
            "",
            format!("not a readable PyTorch checkpoint (expected a torch.save zip archive holding a state dict, or a .safetensors file): {what}"),
        )
    })?;
    if tensors.is_empty() {
        let hint = match state_dict_key {
            Some(k) => format!("no tensors under key `{k}`"),
            None => "no tensors at the top level (if the state dict is nested, set teacher.state_dict_key)".to_string(),
        };
        return Err(InputError::new(shown, "", hint).into());
    }
    Ok(tensors.into_iter().collect())
}
