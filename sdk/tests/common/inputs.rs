//! Inputs of the custom-op tests (`group_norm.rs`, `silu.rs`, `resample_ops.rs`): seeded normal values, and
//! the layouts in which an op's input can arrive (contiguous, contiguous with a start offset, not contiguous).

use boot_sdk::candle::{DType, Device, Tensor};

/// Standard normal values of `shape` from `seed`, times `scale` plus `shift`, on `device` in `dtype`.
pub fn randn(shape: &[usize], seed: u64, scale: f64, shift: f64, dtype: DType, device: &Device) -> Tensor {
    let t = boot_sdk::rng::normal(&[seed], shape, &Device::Cpu).unwrap().squeeze(0).unwrap().to_dtype(DType::F64).unwrap();
    ((t * scale).unwrap() + shift).unwrap().to_dtype(dtype).unwrap().to_device(device).unwrap()
}

/// How the input reaches the op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// A contiguous tensor.
    Contiguous,
    /// Samples `1..=B` of a `B + 2` batch: contiguous with a start offset.
    Offset,
    /// The last two dims swapped: not contiguous.
    Transposed,
}

impl Input {
    /// The shape of the tensor that an input of `shape` is taken from.
    pub fn source_shape(self, shape: &[usize]) -> Vec<usize> {
        let mut source = shape.to_vec();
        match self {
            Input::Contiguous => {}
            Input::Offset => source[0] += 2,
            Input::Transposed => source.swap(shape.len() - 2, shape.len() - 1),
        }
        source
    }

    /// The input of batch `batch` taken from `source` (of [`Input::source_shape`]), its layout asserted.
    pub fn take(self, source: &Tensor, batch: usize) -> Tensor {
        let x = match self {
            Input::Contiguous => source.clone(),
            Input::Offset => source.narrow(0, 1, batch).unwrap(),
            Input::Transposed => {
                let rank = source.rank();
                source.transpose(rank - 2, rank - 1).unwrap()
            }
        };
        match self {
            Input::Offset => assert!(x.is_contiguous() && x.layout().start_offset() > 0, "the input must be contiguous with an offset"),
            Input::Transposed => assert!(!x.is_contiguous(), "the input must not be contiguous"),
            Input::Contiguous => assert!(x.is_contiguous() && x.layout().start_offset() == 0),
        }
        x
    }
}
