//! Plumbing shared by the sdk's custom ops (`group_norm_op.rs`, `silu_op.rs`): dispatch on the float storage
//! dtypes, contiguous arguments as CPU slices or CUDA views, and (feature `cuda`) kernel sources compiled
//! once per process with NVRTC and loaded on each device.

use crate::candle::{bail, CpuStorage, DType, Layout, Result, WithDType};

/// Runs `$module::$f::<T>(args..)` with `T` the Rust type of a float `$dtype`; other dtypes are an error
/// naming the op `$op`.
macro_rules! dispatch {
    ($op:expr, $dtype:expr, $module:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match $dtype {
            $crate::candle::DType::F32 => $module::$f::<f32>($($arg),*),
            $crate::candle::DType::F64 => $module::$f::<f64>($($arg),*),
            $crate::candle::DType::BF16 => $module::$f::<half::bf16>($($arg),*),
            $crate::candle::DType::F16 => $module::$f::<half::f16>($($arg),*),
            d => Err($crate::candle::Error::Msg(format!("{}: unsupported dtype {d:?} (expected f32, f64, bf16 or f16)", $op)).bt()),
        }
    };
}
pub(super) use dispatch;

/// The contiguous elements of a CPU argument of the op `op` (its start offset applied).
pub(super) fn cpu_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&T::cpu_storage_as_slice(s)?[start..end]),
        None => bail!("{op}: arguments must be contiguous (call .contiguous() first)"),
    }
}

/// Checks that an argument `what` of the op `op` has `dtype`, `shape` and a contiguous layout.
pub(super) fn check_arg(op: &str, what: &str, got: DType, layout: &Layout, dtype: DType, shape: &[usize]) -> Result<()> {
    if got != dtype {
        bail!("{op}: {what} is {got:?}, expected {dtype:?}");
    }
    if layout.dims() != shape {
        bail!("{op}: {what} has shape {:?}, expected {shape:?}", layout.dims());
    }
    if !layout.is_contiguous() {
        bail!("{op}: {what} must be contiguous (call .contiguous() first)");
    }
    Ok(())
}

/// CUDA arguments and NVRTC-compiled kernels.
#[cfg(feature = "cuda")]
pub(super) mod cuda {
    use std::sync::OnceLock;

    use crate::candle::cuda_backend::cudarc::driver::{CudaFunction, CudaView, DeviceRepr};
    use crate::candle::cuda_backend::{CudaDType, CudaDevice, CudaStorage};
    use crate::candle::{bail, Layout, Result, WithDType};

    /// The element types every kernel source can use (`bf16_t`, `f16_t`, `to_acc`, `store`).
    const TYPES: &str = include_str!("kernel_types.cu");

    /// A storage dtype of the kernels: its arithmetic type and its kernels' name suffix.
    pub(in crate::ops) trait Elem: CudaDType + DeviceRepr + WithDType {
        /// `f32`, or `f64` for `f64`.
        type Acc: CudaDType + DeviceRepr + WithDType;
        /// The kernels' suffix (`gn_forward_bf16`, `silu_forward_f16`, ..).
        const SUFFIX: &'static str;
    }

    macro_rules! elem {
        ($t:ty, $acc:ty, $suffix:literal) => {
            impl Elem for $t {
                type Acc = $acc;
                const SUFFIX: &'static str = $suffix;
            }
        };
    }
    elem!(f32, f32, "f32");
    elem!(f64, f64, "f64");
    elem!(half::bf16, f32, "bf16");
    elem!(half::f16, f32, "f16");

    /// The kernels of one `.cu` file: compiled to PTX by NVRTC on first use (after `kernel_types.cu`; no
    /// include paths needed) and loaded as one module per device.
    pub(in crate::ops) struct Kernels {
        /// The module's name on each device.
        module: &'static str,
        /// The source's file name, for error messages.
        file: &'static str,
        /// The CUDA C source (without `kernel_types.cu`).
        source: &'static str,
        /// The PTX, or NVRTC's error.
        ptx: OnceLock<std::result::Result<String, String>>,
    }

    impl Kernels {
        /// The kernels of `source` (`include_str!(file)`), loaded as `module`.
        pub(in crate::ops) const fn new(module: &'static str, file: &'static str, source: &'static str) -> Self {
            Self { module, file, source, ptx: OnceLock::new() }
        }

        /// The PTX, compiled on the first call.
        fn ptx(&self) -> Result<&str> {
            let compiled = self.ptx.get_or_init(|| {
                let source = [TYPES, self.source].concat();
                crate::candle::cuda_backend::cudarc::nvrtc::compile_ptx(source).map(|p| p.to_src()).map_err(|e| format!("{e:?}"))
            });
            match compiled {
                Ok(ptx) => Ok(ptx.as_str()),
                Err(e) => bail!("{}: NVRTC could not compile {}: {e}", self.module, self.file),
            }
        }

        /// The kernel `name` on `dev` (the module is loaded on the first call per device), to launch on the
        /// device's stream (`dev.cuda_stream().launch_builder(&f)`).
        pub(in crate::ops) fn func(&self, dev: &CudaDevice, name: &str) -> Result<CudaFunction> {
            Ok(dev.get_or_load_custom_func(name, self.module, self.ptx()?)?.into_cuda_function())
        }
    }

    /// The contiguous elements of an argument of the op `op` (its start offset applied).
    pub(in crate::ops) fn view<'a, T: CudaDType>(s: &'a CudaStorage, l: &Layout, op: &str) -> Result<CudaView<'a, T>> {
        match l.contiguous_offsets() {
            Some((start, end)) => Ok(s.as_cuda_slice::<T>()?.slice(start..end)),
            None => bail!("{op}: arguments must be contiguous (call .contiguous() first)"),
        }
    }
}
