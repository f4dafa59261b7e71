//! The input transform of the FD features: images in `[-1, 1]` to the normalised ImageNet input.
//!
//! Grayscale is repeated to 3 channels; the image is resized to `size x size` with a bilinear filter with
//! antialiasing (PyTorch's `interpolate(mode="bilinear", align_corners=False, antialias=True)`, the same
//! weights as PIL's `BILINEAR` resize of a float image, which torchvision's `Resize` uses), then mapped
//! from `[-1, 1]` to `[0, 1]` and normalised with the ImageNet mean and std. Up-sampling (28 or 32 pixels
//! to 224) is plain bilinear interpolation; antialiasing only widens the filter when shrinking. clean-fid
//! resizes with PIL's bicubic filter to Inception's 299; this network's torchvision recipe is bilinear.

use crate::candle::{Result, Tensor};

/// ImageNet channel means (RGB) of the `[0, 1]` images.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// The `[out, in]` interpolation matrix of one axis: PyTorch's antialiased bilinear weights (a triangle
/// filter stretched by the scale when shrinking, normalised to sum 1 over the taps inside the image).
pub fn resize_weights(input: usize, output: usize) -> Vec<f64> {
    let scale = input as f64 / output as f64;
    let (support, inv) = if scale >= 1.0 { (scale, 1.0 / scale) } else { (1.0, 1.0) };
    let mut m = vec![0.0; output * input];
    for i in 0..output {
        let center = scale * (i as f64 + 0.5);
        // As the original: truncation toward zero, then clamping to the image.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).min(input as i64) as usize;
        let row = &mut m[i * input..(i + 1) * input];
        let mut total = 0.0;
        for (j, w) in row.iter_mut().enumerate().take(hi).skip(lo) {
            *w = (1.0 - ((j as f64 - center + 0.5) * inv).abs()).max(0.0);
            total += *w;
        }
        if total > 0.0 {
            row.iter_mut().for_each(|w| *w /= total);
        }
    }
    m
}

/// Resizes `x` (`[B, C, H, W]`) to `[B, C, out_h, out_w]` with [`resize_weights`] on each axis.
pub fn resize_bilinear(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let axis = |input, output| Tensor::from_vec(resize_weights(input, output), (output, input), x.device())?.to_dtype(x.dtype());
    let (rows, cols) = (axis(h, out_h)?, axis(w, out_w)?);
    // [B*C*H, W] x [W, out_w], then [out_h, H] x [B*C, H, out_w].
    let y = x.reshape((b * c * h, w))?.matmul(&cols.t()?)?.reshape((b * c, h, out_w))?;
    rows.broadcast_left(b * c)?.matmul(&y)?.reshape((b, c, out_h, out_w))
}

/// `x` (`[B, 1 or 3, H, W]` in `[-1, 1]`) to the network's input `[B, 3, size, size]`.
pub fn imagenet_input(x: &Tensor, size: usize) -> Result<Tensor> {
    let x = match x.dim(1)? {
        1 => x.repeat((1, 3, 1, 1))?,
        3 => x.clone(),
        c => crate::candle::bail!("FD input: expected 1 or 3 channels, found {c}"),
    };
    let x = resize_bilinear(&x, size, size)?;
    let per_channel = |v: [f64; 3]| Tensor::from_vec(v.to_vec(), (1, 3, 1, 1), x.device())?.to_dtype(x.dtype());
    let (mean, std) = (per_channel(IMAGENET_MEAN)?, per_channel(IMAGENET_STD)?);
    ((x + 1.0)? * 0.5)?.broadcast_sub(&mean)?.broadcast_div(&std)
}
