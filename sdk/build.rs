//! Computes the build id that host and plugins compare at load time: a hash of the sdk's sources, the
//! compiler version, the profile and the enabled features. A plugin compiled against other sdk sources is
//! refused before any of its code runs (docs/architecture.md, guard 3).
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

fn hash_dir(dir: &Path, h: &mut DefaultHasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read sdk dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            hash_dir(&p, h);
        } else {
            p.file_name().hash(h);
            std::fs::read(&p).expect("read sdk source").hash(h);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut h = DefaultHasher::new();
    hash_dir(&root.join("src"), &mut h);
    std::fs::read(root.join("Cargo.toml")).expect("read sdk manifest").hash(&mut h);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    version.hash(&mut h);
    let profile = std::env::var("PROFILE").unwrap_or_default();
    profile.hash(&mut h);
    let mut features: Vec<String> =
        std::env::vars().filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase())).collect();
    features.sort();
    features.hash(&mut h);
    println!("cargo:rustc-env=BOOT_SDK_BUILD_ID={:016x}", h.finish());
    println!("cargo:rustc-env=BOOT_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=BOOT_SDK_FEATURES={}", features.join(","));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
}
