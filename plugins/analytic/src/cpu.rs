//! Helpers of the CPU kernels (the custom ops of the student): raw data access and spreading per-sample loops
//! over threads.

use boot_sdk::candle::{Layout, Storage, Tensor, WithDType};

/// The contiguous data of a layout, or an error naming the op.
pub fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> boot_sdk::candle::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(boot_sdk::candle::Error::Msg(format!("{op}: inputs must be contiguous"))),
    }
}

/// Runs `f` on the data of a CPU tensor, made contiguous, without copying it when it already is.
pub fn with_cpu_data<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> boot_sdk::candle::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(cpu), Some((start, end))) => Ok(f(&cpu.as_slice::<T>()?[start..end])),
        _ => Err(boot_sdk::candle::Error::Msg("expected a contiguous CPU tensor".into())),
    }
}

/// Runs `f` on every item, spread over candle's CPU thread count with scoped threads.
pub fn parallel<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync) {
    let threads = boot_sdk::candle::utils::get_num_threads().clamp(1, items.len().max(1));
    if threads == 1 {
        items.into_iter().for_each(f);
        return;
    }
    let per = items.len().div_ceil(threads);
    let mut items = items.into_iter();
    let f = &f;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let part: Vec<I> = items.by_ref().take(per).collect();
            scope.spawn(move || part.into_iter().for_each(f));
        }
    });
}
