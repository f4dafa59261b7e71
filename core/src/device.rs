//! Parsing `run.device`.

use boot_sdk::candle::Device;
use boot_sdk::InputError;

/// `cpu` or `cuda:N`. Asking for CUDA from a build without it, or on a machine without a GPU, is an input
/// error naming `run.device`.
pub fn parse_device(spec: &str) -> boot_sdk::Result<Device> {
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.strip_prefix("cuda:").or(if spec == "cuda" { Some("0") } else { None }) {
        Some(n) => n.parse::<usize>().map_err(|_| InputError::config("run.device", format!("`{spec}`: expected `cpu` or `cuda:N`")))?,
        None => return Err(InputError::config("run.device", format!("`{spec}`: expected `cpu` or `cuda:N`")).into()),
    };
    if !cfg!(feature = "cuda") {
        return Err(InputError::config("run.device", format!("`{spec}`: this build has no CUDA support (build with `--features cuda`)")).into());
    }
    let device = Device::new_cuda(ordinal).map_err(|e| {
        // candle attaches a backtrace when RUST_BACKTRACE is set; the refusal stays one line.
        let e = match e {
            boot_sdk::candle::Error::WithBacktrace { inner, .. } => *inner,
            e => e,
        };
        anyhow::Error::from(InputError::config("run.device", format!("`{spec}`: no usable CUDA device ({e})")))
    })?;
    #[cfg(feature = "cuda")]
    if std::env::var("BOOT_CUDA_EVENTS").as_deref() != Ok("1") {
        // Every kernel of a run goes to this device's one stream (cuDNN's handle included), so cudarc's
        // cross-stream event tracking (an event recorded per buffer argument of every launch) only costs CPU
        // time. BOOT_CUDA_EVENTS=1 keeps it (for code that adds streams).
        // SAFETY: single-stream use, the condition candle documents for turning it off.
        unsafe { device.as_cuda_device()?.disable_event_tracking() };
    }
    #[cfg(feature = "cuda")]
    keep_freed_memory(&device)?;
    Ok(device)
}

/// Lets the device's default memory pool (where cudarc's stream-ordered allocations come from) keep freed
/// memory instead of returning it to the driver at every synchronisation (its default release threshold is
/// 0): otherwise every phase of a training step maps its tensors' memory afresh (measured on an H200: a
/// 100M-element bf16 `add` took 0.85 ms instead of 0.15 ms). PyTorch's caching allocator keeps memory too.
#[cfg(feature = "cuda")]
fn keep_freed_memory(device: &Device) -> boot_sdk::Result<()> {
    use boot_sdk::candle::cuda_backend::cudarc::driver::sys;
    let stream = device.as_cuda_device()?.cuda_stream();
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: a live device handle and a pointer to a u64, the attribute's documented value type.
    let status = unsafe {
        let s = sys::cuDeviceGetDefaultMemPool(&mut pool, stream.context().cu_device());
        if s != sys::CUresult::CUDA_SUCCESS {
            s
        } else {
            sys::cuMemPoolSetAttribute(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &mut threshold as *mut u64 as *mut std::ffi::c_void)
        }
    };
    if status != sys::CUresult::CUDA_SUCCESS {
        anyhow::bail!("CUDA: setting the memory pool's release threshold failed ({status:?})");
    }
    Ok(())
}
