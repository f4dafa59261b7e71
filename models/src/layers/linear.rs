//! Fully connected layer with PyTorch's key layout: `weight [out, in]`, optional `bias [out]`.

use crate::candle::{Result, Tensor};
use crate::candle_nn::{Init, VarBuilder};

/// `y = x W^T + b` over the last axis of `x` (`[.., in]`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Loads `weight` (and `bias` when `bias` is true) of an `in_features -> out_features` layer.
    pub fn new(vb: VarBuilder, in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        let weight = vb.get((out_features, in_features), "weight")?;
        let bias = if bias { Some(vb.get(out_features, "bias")?) } else { None };
        Ok(Self { weight, bias })
    }

    /// Like [`Linear::new`], but a parameter missing from a `VarMap` is created as zeros (a new conditioning
    /// layer whose output is exactly 0 until trained, as BOOT's students add them).
    pub fn zeros(vb: VarBuilder, in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        let weight = vb.get_with_hints((out_features, in_features), "weight", Init::Const(0.0))?;
        let bias = if bias { Some(vb.get_with_hints(out_features, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias })
    }

    /// Builds a layer from tensors already at hand.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Applies the layer to `x` (`[.., in]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.to_dtype(x.dtype())?;
        let y = match x.rank() {
            2 => x.matmul(&w.t()?)?,
            _ => {
                let dims = x.dims().to_vec();
                let rows: usize = dims[..dims.len() - 1].iter().product();
                let mut out = dims.clone();
                if let Some(last) = out.last_mut() {
                    *last = self.out_features();
                }
                x.reshape((rows, self.in_features()))?.matmul(&w.t()?)?.reshape(out)?
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?),
            None => Ok(y),
        }
    }
}
