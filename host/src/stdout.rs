//! Writing to standard output without panicking when the reader has gone (`boot-host ... | head`):
//! `println!` panics on a closed pipe; here a broken pipe is a quiet success and later lines are dropped.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout; once the reader has closed the pipe, does nothing.
pub fn line(text: impl std::fmt::Display) -> std::io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => r,
    }
}
