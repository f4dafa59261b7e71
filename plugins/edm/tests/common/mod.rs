//! Shared by the EDM tests: the run-time test device and dtype (`device.rs`).

#![allow(dead_code)]

mod device;

pub use device::*;
