//! Building blocks of the student UNet, all channels-last (`[B, H, W, C]`): dense layers, residual blocks with
//! an additive embedding, sinusoidal embeddings and space-to-depth reshapes.

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::candle_nn::{Init, VarBuilder};

use crate::conv::Conv3x3;
use crate::norm::GroupNormSilu;

/// A dense layer `in -> out` over the last axis (`weight` `[out, in]`, `bias` `[out]`).
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// A layer from `cin` to `cout` features, zero-initialised when `zero`, else LeCun-normal.
    pub fn new(cin: usize, cout: usize, zero: bool, vb: VarBuilder) -> boot_sdk::Result<Self> {
        let init = if zero { Init::Const(0.0) } else { Init::Randn { mean: 0.0, stdev: (1.0 / cin as f64).sqrt() } };
        Ok(Self {
            weight: vb.get_with_hints((cout, cin), "weight", init)?,
            bias: vb.get_with_hints(cout, "bias", Init::Const(0.0))?,
        })
    }

    /// Applies the layer to the last axis of `x`. The bias is added to a 2-D view, so that its gradient is a
    /// reduction over one axis (candle reduces over leading axes element by element, per axis).
    pub fn forward(&self, x: &Tensor) -> boot_sdk::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let cin = dims.pop().ok_or_else(|| anyhow::anyhow!("dense layer applied to a scalar"))?;
        let rows: usize = dims.iter().product();
        let y = x.contiguous()?.reshape((rows, cin))?.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        dims.push(self.bias.dim(0)?);
        Ok(y.reshape(dims)?)
    }
}

/// A residual block: `x + conv2(silu(norm2(conv1(silu(norm1(x))) + emb_proj(emb))))`. `conv2` starts at zero,
/// so a fresh block is the identity.
#[derive(Debug, Clone)]
pub struct ResBlock {
    norm1: GroupNormSilu,
    conv1: Conv3x3,
    emb_proj: Dense,
    norm2: GroupNormSilu,
    conv2: Conv3x3,
}

impl ResBlock {
    /// A block over `channels` channels taking an embedding of width `emb_dim`.
    pub fn new(channels: usize, emb_dim: usize, vb: VarBuilder) -> boot_sdk::Result<Self> {
        Ok(Self {
            norm1: GroupNormSilu::new(channels, vb.pp("norm1"))?,
            conv1: Conv3x3::new(channels, channels, false, vb.pp("conv1"))?,
            emb_proj: Dense::new(emb_dim, channels, false, vb.pp("emb_proj"))?,
            norm2: GroupNormSilu::new(channels, vb.pp("norm2"))?,
            conv2: Conv3x3::new(channels, channels, true, vb.pp("conv2"))?,
        })
    }

    /// Applies the block to `x` `[B, H, W, C]` with the activated embedding `emb` (`silu` already applied,
    /// `[B, emb_dim]`).
    pub fn forward(&self, x: &Tensor, emb: &Tensor) -> boot_sdk::Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward(x, None)?)?;
        let h = self.conv2.forward(&self.norm2.forward(&h, Some(&self.emb_proj.forward(emb)?))?)?;
        Ok((x + h)?)
    }
}

/// `[B, dim]` sinusoidal features `[cos(scale v f_i), sin(scale v f_i)]` of one value per sample, with
/// frequencies `f_i = 10000^(-i / (dim / 2))` (`dim` even).
pub fn sinusoidal(values: &[f64], scale: f64, dim: usize, device: &Device, dtype: DType) -> boot_sdk::Result<Tensor> {
    let half = dim / 2;
    let mut out = Vec::with_capacity(values.len() * dim);
    for &v in values {
        let args: Vec<f64> = (0..half).map(|i| scale * v * (-(10000f64.ln()) * i as f64 / half as f64).exp()).collect();
        out.extend(args.iter().map(|a| a.cos() as f32));
        out.extend(args.iter().map(|a| a.sin() as f32));
    }
    Ok(Tensor::from_vec(out, (values.len(), 2 * half), device)?.to_dtype(dtype)?)
}

/// `[B, H, W, C] -> [B, H/f, W/f, f*f*C]`: each `f x f` patch becomes one pixel.
pub fn space_to_depth(x: &Tensor, f: usize) -> boot_sdk::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let patches = x.reshape((b, h / f, f, w / f, f, c))?.permute((0, 1, 3, 2, 4, 5))?;
    Ok(patches.contiguous()?.reshape((b, h / f, w / f, f * f * c))?)
}

/// The inverse of [`space_to_depth`]: `[B, h, w, f*f*C] -> [B, h*f, w*f, C]`.
pub fn depth_to_space(x: &Tensor, f: usize) -> boot_sdk::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let pixels = x.reshape((b, h, w, f, f, c / (f * f)))?.permute((0, 1, 3, 2, 4, 5))?;
    Ok(pixels.contiguous()?.reshape((b, h * f, w * f, c / (f * f)))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_to_space_inverts_space_to_depth() -> boot_sdk::Result<()> {
        let x = Tensor::randn(0f32, 1.0, (2, 8, 4, 3), &Device::Cpu)?;
        let y = space_to_depth(&x, 2)?;
        assert_eq!(y.dims(), [2, 4, 2, 12]);
        let back = depth_to_space(&y, 2)?;
        assert_eq!(back.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
