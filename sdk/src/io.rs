//! File input and output shared by host and plugins: atomic writes, and safetensors reading with errors
//! that name the file and tensor.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::candle::{Device, Tensor};
use crate::error::{input_error, InputError};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a reader never
/// sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// Serializes named tensors as safetensors (with string metadata) and writes them atomically.
pub fn save_safetensors(path: &Path, tensors: &HashMap<String, Tensor>, metadata: Option<HashMap<String, String>>) -> crate::Result<()> {
    let mut cpu: Vec<(String, Tensor)> = Vec::with_capacity(tensors.len());
    for (k, v) in tensors {
        cpu.push((k.clone(), v.to_device(&Device::Cpu)?));
    }
    cpu.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = safetensors::serialize(cpu.iter().map(|(k, v)| (k.as_str(), v)), metadata)?;
    write_atomic(path, &bytes)
}

/// Reads every tensor of a safetensors file onto `device`. A missing, unreadable or truncated file is an
/// [`InputError`] naming the file.
pub fn load_safetensors(path: &Path, device: &Device) -> crate::Result<HashMap<String, Tensor>> {
    let (tensors, _) = load_safetensors_with_metadata(path, device)?;
    Ok(tensors)
}

/// Like [`load_safetensors`], also returning the file's string metadata.
pub fn load_safetensors_with_metadata(path: &Path, device: &Device) -> crate::Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return input_error(shown, "", format!("cannot read file: {e}")),
    };
    let st = match safetensors::SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(e) => return input_error(shown, "", format!("not a valid safetensors file (truncated or corrupt?): {e}")),
    };
    let metadata = match safetensors::SafeTensors::read_metadata(&bytes) {
        Ok((_, m)) => m.metadata().clone().unwrap_or_default(),
        Err(e) => return input_error(shown, "", format!("unreadable safetensors header: {e}")),
    };
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let t = crate::candle::safetensors::Load::load(&view, device)
            .map_err(|e| InputError::new(shown.clone(), format!("tensor `{name}`"), format!("cannot load: {e}")))?;
        out.insert(name, t);
    }
    Ok((out, metadata))
}

/// Takes tensor `name` out of `tensors`, checking its shape: a missing tensor or a shape mismatch is an
/// [`InputError`] naming the file, the tensor, and the expected and found shapes.
pub fn take_tensor(tensors: &mut HashMap<String, Tensor>, file: &str, name: &str, expected: &[usize]) -> crate::Result<Tensor> {
    match tensors.remove(name) {
        None => input_error(file, format!("tensor `{name}`"), format!("missing (expected shape {expected:?})")),
        Some(t) if t.dims() != expected => {
            input_error(file, format!("tensor `{name}`"), format!("expected shape {expected:?}, found {:?}", t.dims()))
        }
        Some(t) => Ok(t),
    }
}
