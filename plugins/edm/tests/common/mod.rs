//! Shared by the EDM tests: the run-time test device and dtype (`device.rs`).

#![allow(dead_code)]

// One copy for every test crate: the sdk's.
#[path = "../../../../sdk/tests/common/device.rs"]
mod device;

pub use device::*;
