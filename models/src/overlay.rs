//! A `VarBuilder` backend that serves some tensors as frozen constants (buffers such as FIR filters and
//! Fourier frequencies) and asks another builder for everything else (trainable parameters in a `VarMap`).

use std::collections::HashMap;

use crate::candle::{DType, Device, Shape, Tensor};
use crate::candle_nn::var_builder::SimpleBackend;
use crate::candle_nn::{Init, VarBuilder};

/// Frozen tensors by full name, falling back to `params` (whose prefix is kept) for every other name.
/// A student built over a `VarMap` this way gets its buffers from the teacher instead of as trainable
/// variables.
pub struct FrozenOverlay<'a> {
    frozen: HashMap<String, Tensor>,
    params: VarBuilder<'a>,
}

impl<'a> FrozenOverlay<'a> {
    /// Serves `frozen` as constants and delegates other names to `params`.
    pub fn new(frozen: HashMap<String, Tensor>, params: VarBuilder<'a>) -> Self {
        Self { frozen, params }
    }

    /// A `VarBuilder` over this overlay, with `params`' dtype and the given device.
    pub fn into_var_builder(self, device: &Device) -> VarBuilder<'a> {
        let dtype = self.params.dtype;
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }
}

impl SimpleBackend for FrozenOverlay<'_> {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> crate::candle::Result<Tensor> {
        match self.frozen.get(name) {
            Some(t) if t.shape() != &s => {
                crate::candle::bail!("frozen tensor `{name}`: expected shape {:?}, found {:?}", s.dims(), t.dims())
            }
            Some(t) => t.to_device(dev)?.to_dtype(dtype),
            None => self.params.get_with_hints_dtype(s, name, h, dtype),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> crate::candle::Result<Tensor> {
        match self.frozen.get(name) {
            Some(t) => t.to_device(dev)?.to_dtype(dtype),
            None => self.params.get_unchecked_dtype(name, dtype),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.frozen.contains_key(name) || self.params.contains_tensor(name)
    }
}
