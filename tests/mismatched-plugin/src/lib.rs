//! A plugin declaration as an older sdk would have written it: the same C-layout header (layout version 1)
//! with another sdk version and build id. It depends on nothing, so it loads anywhere; boot-host must
//! refuse it before calling `register`, which here would abort the process.

use std::ffi::c_char;

/// Same field order and layout as `boot_sdk::plugin::PluginDeclaration`.
#[repr(C)]
pub struct Declaration {
    layout: u32,
    name: *const c_char,
    sdk_version: *const c_char,
    rustc_version: *const c_char,
    build_id: *const c_char,
    features: *const c_char,
    register: fn(),
}

// SAFETY: the pointers refer to immutable 'static strings.
unsafe impl Sync for Declaration {}

fn must_not_be_called() {
    std::process::abort()
}

/// The declaration boot-host reads.
#[no_mangle]
pub static BOOT_PLUGIN_DECLARATION: Declaration = Declaration {
    layout: 1,
    name: c"mismatched".as_ptr(),
    sdk_version: c"0.0.1".as_ptr(),
    rustc_version: c"rustc 1.0.0 (old)".as_ptr(),
    build_id: c"0000000000000000".as_ptr(),
    features: c"".as_ptr(),
    register: must_not_be_called,
};
