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
    Ok(device)
}
