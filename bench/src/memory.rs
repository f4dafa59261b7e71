//! Peak memory, by polling in a background thread every 2 ms:
//! - CUDA: the driver's `cuMemGetInfo` for the run's context (`total - free`: every allocation on the GPU,
//!   this process's context and any other process included — the number `nvidia-smi memory.used` shows);
//! - CPU: the process's resident set (`VmRSS` in `/proc/self/status`).
//!
//! Allocations that live shorter than the polling interval can be missed; the training step's peak (the
//! activations kept for the backward pass) lasts far longer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boot_sdk::candle::Device;

type Probe = Box<dyn Fn() -> Option<u64> + Send>;

/// A background sampler of used memory with a resettable peak.
pub struct MemWatch {
    peak: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// Total device memory (CUDA), bytes.
    pub total: Option<u64>,
    /// What is measured, in words.
    pub method: &'static str,
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(feature = "cuda")]
fn cuda_probe(device: &Device) -> Option<(Probe, u64)> {
    let ctx = device.as_cuda_device().ok()?.cuda_stream().context().clone();
    let (_, total) = ctx.mem_get_info().ok()?;
    let probe: Probe = Box::new(move || ctx.mem_get_info().ok().map(|(free, total)| (total - free) as u64));
    Some((probe, total as u64))
}

#[cfg(not(feature = "cuda"))]
fn cuda_probe(_: &Device) -> Option<(Probe, u64)> {
    None
}

impl MemWatch {
    /// Starts sampling for `device`.
    pub fn start(device: &Device) -> Self {
        let (probe, total, method): (Probe, Option<u64>, &'static str) = match device {
            Device::Cuda(_) => match cuda_probe(device) {
                Some((p, t)) => (p, Some(t), "cuMemGetInfo (total - free) polled every 2 ms: device-wide used memory"),
                None => (Box::new(|| None), None, "unavailable"),
            },
            _ => (Box::new(rss_bytes), None, "VmRSS polled every 2 ms: process resident memory"),
        };
        let peak = Arc::new(AtomicU64::new(0));
        let last = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, l, s) = (peak.clone(), last.clone(), stop.clone());
        if let Some(v) = probe() {
            peak.store(v, Ordering::Relaxed);
            last.store(v, Ordering::Relaxed);
        }
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(v) = probe() {
                    l.store(v, Ordering::Relaxed);
                    p.fetch_max(v, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { peak, last, stop, handle: Some(handle), total, method }
    }

    /// The latest sample, bytes.
    pub fn current(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// The largest sample since the start or the last [`MemWatch::reset_peak`], bytes.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Restarts the peak from the current value.
    pub fn reset_peak(&self) {
        self.peak.store(self.current(), Ordering::Relaxed);
    }
}

impl Drop for MemWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Bytes to MiB.
pub fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}
