//! Lets `target/<profile>/boot-bench` start without `cargo run`, as boot-host's build script does: the
//! binary links the Rust standard library dynamically (shared-dylib plugin model), so its run path also
//! names the toolchain's library directory.
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(out) = std::process::Command::new(rustc).args(["--print", "target-libdir"]).output() {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        }
    }
}
