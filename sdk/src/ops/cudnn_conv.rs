//! cuDNN convolutions as candle custom ops, so that both directions of a training step run cuDNN kernels:
//! one op, [`ConvOp`], runs any of the three cuDNN passes of a convolution (forward, backward-data,
//! backward-filter), and its `bwd` maps a pass to the two others. A forward convolution is `Forward`; a
//! transposed convolution is `BackwardData` of the convolution it transposes.
//!
//! Algorithms are chosen once per shape, dtype and pass by cuDNN's measured search
//! (`cudnnFind*Algorithm`, as `torch.backends.cudnn.benchmark`), restricted to reproducible algorithms in
//! [`CudnnMode::Deterministic`], and cached per thread. `f32` runs with FMA math (no TF32, so it matches the
//! CPU); `bf16` / `f16` store in half precision and accumulate in `f32` on tensor cores.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;

use cudarc::cudnn::{result as cr, sys};
use cudarc::driver::{DevicePtr, DevicePtrMut};

use super::functional::{ConvGeometry, CudnnMode};
use crate::candle::backend::BackendStorage;
use crate::candle::cuda::{CudaDevice, CudaStorage};
use crate::candle::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// One of the three cuDNN passes of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    /// `y = conv(x, w)`; arguments `(x, w)`.
    Forward,
    /// `dx = conv_transpose(dy, w)`; arguments `(dy, w)`.
    BackwardData,
    /// `dw = corr(x, dy)`; arguments `(x, dy)`.
    BackwardFilter,
}

/// A convolution pass of a fixed geometry, applied as a candle custom op.
#[derive(Debug, Clone, Copy)]
struct ConvOp {
    pass: Pass,
    geometry: ConvGeometry,
}

/// `conv2d` of `x` with `w` through cuDNN (geometry checked by the caller).
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvOp { pass: Pass::Forward, geometry })
}

/// `conv_transpose2d` of `x` with `w` through cuDNN: the input gradient of the convolution `geometry`.
pub(crate) fn conv_transpose2d(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvOp { pass: Pass::BackwardData, geometry })
}

impl ConvOp {
    /// Shapes of the two arguments and of the result.
    fn dims(&self) -> ([usize; 4], [usize; 4], [usize; 4]) {
        let g = &self.geometry;
        match self.pass {
            Pass::Forward => (g.input_dims(), g.weight_dims(), g.output_dims()),
            Pass::BackwardData => (g.output_dims(), g.weight_dims(), g.input_dims()),
            Pass::BackwardFilter => (g.input_dims(), g.output_dims(), g.weight_dims()),
        }
    }

    fn with(self, pass: Pass) -> Self {
        Self { pass, ..self }
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.pass {
            Pass::Forward => "cudnn-conv2d",
            Pass::BackwardData => "cudnn-conv2d-backward-data",
            Pass::BackwardFilter => "cudnn-conv2d-backward-filter",
        }
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::candle::bail!("{}: a cuDNN convolution was given CPU tensors", self.name())
    }

    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (d1, d2, out) = self.dims();
        for (what, l, want) in [("first", l1, d1), ("second", l2, d2)] {
            if l.dims() != want || !l.is_contiguous() {
                crate::candle::bail!("{}: {what} argument {:?} (contiguous {}) is not the expected contiguous {want:?}", self.name(), l.dims(), l.is_contiguous());
            }
        }
        if s1.dtype() != s2.dtype() {
            crate::candle::bail!("{}: dtypes differ ({:?} and {:?})", self.name(), s1.dtype(), s2.dtype());
        }
        let storage = launch(self, s1.device(), (s1, l1.start_offset()), (s2, l2.start_offset()))?;
        Ok((storage, Shape::from(out.to_vec())))
    }

    fn bwd(&self, arg1: &Tensor, arg2: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        match self.pass {
            // arg1 = x, arg2 = w: dx = BackwardData(dy, w), dw = BackwardFilter(x, dy).
            Pass::Forward => {
                let dx = if arg1.track_op() { Some(grad.apply_op2_no_bwd(arg2, &self.with(Pass::BackwardData))?) } else { None };
                let dw = if arg2.track_op() { Some(arg1.apply_op2_no_bwd(&grad, &self.with(Pass::BackwardFilter))?) } else { None };
                Ok((dx, dw))
            }
            // A transposed convolution: arg1 lives where the convolution's output does, the result where
            // its input does. d arg1 = Forward(grad, w); dw = BackwardFilter(grad, arg1).
            Pass::BackwardData => {
                let d1 = if arg1.track_op() { Some(grad.apply_op2_no_bwd(arg2, &self.with(Pass::Forward))?) } else { None };
                let dw = if arg2.track_op() { Some(grad.apply_op2_no_bwd(arg1, &self.with(Pass::BackwardFilter))?) } else { None };
                Ok((d1, dw))
            }
            Pass::BackwardFilter => Err(crate::candle::Error::BackwardNotSupported { op: self.name() }),
        }
    }
}

/// cuDNN data type, compute type and math mode of a candle dtype.
fn cudnn_types(dtype: DType) -> Result<(sys::cudnnDataType_t, sys::cudnnDataType_t, sys::cudnnMathType_t)> {
    use sys::cudnnDataType_t as D;
    use sys::cudnnMathType_t as M;
    Ok(match dtype {
        DType::F32 => (D::CUDNN_DATA_FLOAT, D::CUDNN_DATA_FLOAT, M::CUDNN_FMA_MATH),
        DType::F64 => (D::CUDNN_DATA_DOUBLE, D::CUDNN_DATA_DOUBLE, M::CUDNN_FMA_MATH),
        DType::BF16 => (D::CUDNN_DATA_BFLOAT16, D::CUDNN_DATA_FLOAT, M::CUDNN_TENSOR_OP_MATH),
        DType::F16 => (D::CUDNN_DATA_HALF, D::CUDNN_DATA_FLOAT, M::CUDNN_TENSOR_OP_MATH),
        d => crate::candle::bail!("cuDNN convolution: unsupported dtype {d:?}"),
    })
}

fn err(e: cr::CudnnError) -> crate::candle::Error {
    crate::candle::Error::Msg(format!("cuDNN: {e:?}"))
}

fn dims_i32(d: [usize; 4]) -> Result<[i32; 4]> {
    let mut out = [0i32; 4];
    for (o, v) in out.iter_mut().zip(d) {
        *o = i32::try_from(v).map_err(|_| crate::candle::Error::Msg(format!("cuDNN: dimension {v} exceeds i32")))?;
    }
    Ok(out)
}

/// The descriptors of one convolution (destroyed on drop).
struct Descriptors {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
}

impl Descriptors {
    fn new(g: &ConvGeometry, dtype: DType) -> Result<Self> {
        let (data, compute, math) = cudnn_types(dtype)?;
        let nchw = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
        let mut d = Self { x: std::ptr::null_mut(), y: std::ptr::null_mut(), w: std::ptr::null_mut(), conv: std::ptr::null_mut() };
        let (pad, stride) = (g.padding as i32, g.stride as i32);
        // SAFETY: every descriptor is created before it is set, and `Drop` destroys only the created ones.
        unsafe {
            d.x = cr::create_tensor_descriptor().map_err(err)?;
            cr::set_tensor4d_descriptor(d.x, nchw, data, dims_i32(g.input_dims())?).map_err(err)?;
            d.y = cr::create_tensor_descriptor().map_err(err)?;
            cr::set_tensor4d_descriptor(d.y, nchw, data, dims_i32(g.output_dims())?).map_err(err)?;
            d.w = cr::create_filter_descriptor().map_err(err)?;
            cr::set_filter4d_descriptor(d.w, data, nchw, dims_i32(g.weight_dims())?).map_err(err)?;
            d.conv = cr::create_convolution_descriptor().map_err(err)?;
            let mode = sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION;
            cr::set_convolution2d_descriptor(d.conv, pad, pad, stride, stride, 1, 1, mode, compute).map_err(err)?;
            cr::set_convolution_group_count(d.conv, g.groups as i32).map_err(err)?;
            cr::set_convolution_math_type(d.conv, math).map_err(err)?;
        }
        Ok(d)
    }
}

impl Drop for Descriptors {
    fn drop(&mut self) {
        // SAFETY: each pointer is either null or a live descriptor created in `new`. Errors cannot be
        // reported from drop and leave nothing to clean up.
        unsafe {
            if !self.x.is_null() {
                let _ = cr::destroy_tensor_descriptor(self.x);
            }
            if !self.y.is_null() {
                let _ = cr::destroy_tensor_descriptor(self.y);
            }
            if !self.w.is_null() {
                let _ = cr::destroy_filter_descriptor(self.w);
            }
            if !self.conv.is_null() {
                let _ = cr::destroy_convolution_descriptor(self.conv);
            }
        }
    }
}

/// A cuDNN algorithm of one of the three passes.
#[derive(Debug, Clone, Copy)]
enum Algo {
    Forward(sys::cudnnConvolutionFwdAlgo_t),
    BackwardData(sys::cudnnConvolutionBwdDataAlgo_t),
    BackwardFilter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

/// The algorithm chosen for one (pass, geometry, dtype, mode): algorithm, math type and workspace bytes.
#[derive(Debug, Clone, Copy)]
struct Choice {
    algo: Algo,
    math: sys::cudnnMathType_t,
    workspace: usize,
}

/// A cuDNN handle bound to one CUDA stream (destroyed on drop).
struct Handle(sys::cudnnHandle_t);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: created by `create_handle` and destroyed only here.
        let _ = unsafe { cr::destroy_handle(self.0) };
    }
}

type Key = (Pass, ConvGeometry, DType, CudnnMode);

thread_local! {
    // cuDNN handles are not thread-safe: one per thread and stream, as candle keeps its own.
    static HANDLES: RefCell<HashMap<usize, Handle>> = RefCell::new(HashMap::new());
    static CHOICES: RefCell<HashMap<Key, Choice>> = RefCell::new(HashMap::new());
}

/// Picks the first result of a cuDNN search (sorted fastest first) that succeeded and, in deterministic
/// mode, is reproducible.
macro_rules! pick {
    ($perf:expr, $n:expr, $mode:expr, $algo:path, $what:expr) => {{
        let found = $perf[..$n as usize].iter().find(|p| {
            p.status == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS
                && ($mode != CudnnMode::Deterministic || p.determinism == sys::cudnnDeterminism_t::CUDNN_DETERMINISTIC)
        });
        match found {
            Some(p) => Choice { algo: $algo(p.algo), math: p.mathType, workspace: p.memory },
            None => crate::candle::bail!("cuDNN: no usable {} algorithm ({:?} mode)", $what, $mode),
        }
    }};
}

/// Runs cuDNN's measured algorithm search for this pass (it allocates its own buffers and synchronises).
fn search(h: sys::cudnnHandle_t, pass: Pass, d: &Descriptors, mode: CudnnMode) -> Result<Choice> {
    const N: usize = 16;
    let mut n = 0i32;
    // SAFETY: the handle and descriptors are live; the result arrays hold N entries and cuDNN writes at
    // most the requested count.
    unsafe {
        Ok(match pass {
            Pass::Forward => {
                let mut perf = [std::mem::zeroed::<sys::cudnnConvolutionFwdAlgoPerf_t>(); N];
                sys::cudnnFindConvolutionForwardAlgorithm(h, d.x, d.w, d.conv, d.y, N as i32, &mut n, perf.as_mut_ptr()).result().map_err(err)?;
                pick!(perf, n, mode, Algo::Forward, "forward")
            }
            Pass::BackwardData => {
                let mut perf = [std::mem::zeroed::<sys::cudnnConvolutionBwdDataAlgoPerf_t>(); N];
                sys::cudnnFindConvolutionBackwardDataAlgorithm(h, d.w, d.y, d.conv, d.x, N as i32, &mut n, perf.as_mut_ptr()).result().map_err(err)?;
                pick!(perf, n, mode, Algo::BackwardData, "backward-data")
            }
            Pass::BackwardFilter => {
                let mut perf = [std::mem::zeroed::<sys::cudnnConvolutionBwdFilterAlgoPerf_t>(); N];
                sys::cudnnFindConvolutionBackwardFilterAlgorithm(h, d.x, d.y, d.conv, d.w, N as i32, &mut n, perf.as_mut_ptr()).result().map_err(err)?;
                pick!(perf, n, mode, Algo::BackwardFilter, "backward-filter")
            }
        })
    }
}

/// Runs `op` on the two device buffers (element offsets given) and returns the new result buffer.
fn launch(op: &ConvOp, dev: &CudaDevice, a: (&CudaStorage, usize), b: (&CudaStorage, usize)) -> Result<CudaStorage> {
    macro_rules! typed {
        ($t:ty) => {
            launch_typed::<$t>(op, dev, a.0.as_cuda_slice::<$t>()?.slice(a.1..), b.0.as_cuda_slice::<$t>()?.slice(b.1..))
        };
    }
    match a.0.dtype() {
        DType::F32 => typed!(f32),
        DType::F64 => typed!(f64),
        DType::BF16 => typed!(half::bf16),
        DType::F16 => typed!(half::f16),
        d => crate::candle::bail!("cuDNN convolution: unsupported dtype {d:?}"),
    }
}

fn launch_typed<T>(op: &ConvOp, dev: &CudaDevice, a: cudarc::driver::CudaView<T>, b: cudarc::driver::CudaView<T>) -> Result<CudaStorage>
where
    T: crate::candle::cuda::CudaDType + cudarc::driver::DeviceRepr + crate::candle::WithDType,
{
    let dtype = T::DTYPE;
    let stream = dev.cuda_stream();
    let mode = CudnnMode::current();
    let d = Descriptors::new(&op.geometry, dtype)?;
    let n_out: usize = op.dims().2.iter().product();
    // SAFETY: cuDNN writes every element of the result (beta = 0).
    let mut out = unsafe { dev.alloc::<T>(n_out)? };
    let key = (op.pass, op.geometry, dtype, mode);
    HANDLES.with(|handles| -> Result<()> {
        let mut handles = handles.borrow_mut();
        let id = stream.cu_stream() as usize;
        if !handles.contains_key(&id) {
            stream.context().bind_to_thread().map_err(|e| crate::candle::Error::Msg(format!("CUDA: {e:?}")))?;
            let h = cr::create_handle().map_err(err)?;
            // SAFETY: a fresh handle and the device's live stream.
            unsafe { cr::set_stream(h, stream.cu_stream() as *mut _) }.map_err(err)?;
            handles.insert(id, Handle(h));
        }
        let h = handles[&id].0;
        let cached = CHOICES.with(|c| c.borrow().get(&key).copied());
        let choice = match cached {
            Some(c) => c,
            None => {
                let c = search(h, op.pass, &d, mode)?;
                tracing::debug!(pass = ?op.pass, geometry = ?op.geometry, ?dtype, algo = ?c.algo, workspace = c.workspace, "cuDNN algorithm");
                CHOICES.with(|m| m.borrow_mut().insert(key, c));
                c
            }
        };
        // SAFETY: a live descriptor; the math type comes from cuDNN's own search result.
        unsafe { cr::set_convolution_math_type(d.conv, choice.math) }.map_err(err)?;
        // SAFETY: uninitialised scratch memory that cuDNN may use freely.
        let mut workspace = unsafe { dev.alloc::<u8>(choice.workspace.max(1))? };
        let (one_f, zero_f, one_d, zero_d) = (1f32, 0f32, 1f64, 0f64);
        let (alpha, beta): (*const c_void, *const c_void) = if dtype == DType::F64 {
            (&one_d as *const f64 as _, &zero_d as *const f64 as _)
        } else {
            (&one_f as *const f32 as _, &zero_f as *const f32 as _)
        };
        let (pa, _ra) = a.device_ptr(&stream);
        let (pb, _rb) = b.device_ptr(&stream);
        let (po, _ro) = out.device_ptr_mut(&stream);
        let (pw, _rw) = workspace.device_ptr_mut(&stream);
        let (pa, pb, po, pw) = (pa as *mut c_void, pb as *mut c_void, po as *mut c_void, pw as *mut c_void);
        let ws = choice.workspace;
        // SAFETY: the buffers have the shapes of the descriptors (checked in `cuda_fwd`), live on the
        // handle's stream, and the result buffer does not alias the arguments.
        unsafe {
            match choice.algo {
                Algo::Forward(algo) => cr::convolution_forward(h, alpha, d.x, pa, d.w, pb, d.conv, algo, pw, ws, beta, d.y, po),
                Algo::BackwardData(algo) => cr::convolution_backward_data(h, alpha, d.w, pb, d.y, pa, d.conv, algo, pw, ws, beta, d.x, po),
                Algo::BackwardFilter(algo) => cr::convolution_backward_filter(h, alpha, d.x, pa, d.y, pb, d.conv, algo, pw, ws, beta, d.w, po),
            }
        }
        .map_err(err)
    })?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}
