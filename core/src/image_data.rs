//! Real image sets for `boot-host fd-stats`: `uint8` arrays `[N, H, W]` (grayscale) or `[N, H, W, C]`
//! (`C` = 1 or 3) in a `.npz` (numpy, uncompressed: candle's zip reader has no deflate) or `.safetensors`
//! file, as pixels `[N, C, H, W]` in `[-1, 1]`.

use std::path::Path;

use boot_sdk::candle::{DType, Tensor};
use boot_sdk::InputError;

/// Reads array `key` of `path` (`.npz` or `.safetensors`); without `key` the file must hold exactly one.
pub fn read_images(path: &Path, key: Option<&str>) -> boot_sdk::Result<Tensor> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(InputError::new(shown, "", "missing").into());
    }
    let arrays: Vec<(String, Tensor)> = match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => Tensor::read_npz(path).map_err(|e| InputError::new(&shown, "", format!("cannot read npz ({e}); compressed archives (numpy.savez_compressed) are not supported: re-save with numpy.savez or as .safetensors")))?,
        Some("safetensors") => boot_sdk::io::load_safetensors(path, &boot_sdk::candle::Device::Cpu)?.into_iter().collect(),
        _ => return Err(InputError::new(shown, "", "expected a .npz or .safetensors file").into()),
    };
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    let (name, x) = match key {
        Some(k) => arrays.iter().find(|(n, _)| n == k).ok_or_else(|| InputError::new(&shown, format!("array `{k}`"), format!("missing (the file holds {names:?})")))?,
        None if arrays.len() == 1 => &arrays[0],
        None => return Err(InputError::new(shown, "", format!("holds {names:?}: choose one with --key")).into()),
    };
    let bad = |msg: String| InputError::new(&shown, format!("array `{name}`"), msg);
    if x.dtype() != DType::U8 {
        return Err(bad(format!("expected uint8 images, found {:?}", x.dtype())).into());
    }
    let x = match x.dims() {
        [_, _, _] => x.unsqueeze(1)?,
        [_, _, _, 1 | 3] => x.permute((0, 3, 1, 2))?,
        d => return Err(bad(format!("expected [N, H, W] or [N, H, W, C] with C = 1 or 3, found {d:?}")).into()),
    };
    Ok(x.to_dtype(DType::F32)?.affine(1.0 / 127.5, -1.0)?)
}

/// Centres `x` (`[N, C, h, w]`) in `[N, C, height, width]`, the border at -1 (black): the padding of a
/// teacher trained on padded images (Fashion-MNIST's 28x28 in 32x32).
pub fn pad_to(x: &Tensor, height: usize, width: usize) -> boot_sdk::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (top, left) = ((height - h) / 2, (width - w) / 2);
    let y = (x + 1.0)?.pad_with_zeros(2, top, height - h - top)?.pad_with_zeros(3, left, width - w - left)?;
    Ok((y - 1.0)?)
}
