//! PNG grids of samples.

use std::path::Path;

use boot_sdk::candle::{DType, Tensor};

/// Writes `images` (`[N, C, H, W]`, values in `[-1, 1]`) as one PNG grid with `cols` columns, atomically.
/// One channel is grey, three are RGB; other channel counts show their first channel (or first three).
pub fn save_grid(path: &Path, images: &Tensor, cols: usize) -> boot_sdk::Result<()> {
    let (n, c, h, w) = images.dims4()?;
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let data = images.to_dtype(DType::F32)?.to_device(&boot_sdk::candle::Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    let (gw, gh) = (cols * (w + 1) + 1, rows * (h + 1) + 1);
    let mut pixels = vec![255u8; gw * gh * 3];
    for i in 0..n {
        let (ox, oy) = (1 + (i % cols) * (w + 1), 1 + (i / cols) * (h + 1));
        for y in 0..h {
            for x in 0..w {
                for ch in 0..3 {
                    let src = if c >= 3 { ch } else { 0 };
                    let v = data[((i * c + src) * h + y) * w + x];
                    let byte = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                    pixels[((oy + y) * gw + ox + x) * 3 + ch] = byte;
                }
            }
        }
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(&pixels, gw as u32, gh as u32, image::ExtendedColorType::Rgb8)?;
    boot_sdk::io::write_atomic(path, &png)
}

use image::ImageEncoder;
