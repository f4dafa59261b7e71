//! `boot-host fd-stats` and `fd` in eval.json, with the tests' small random EfficientNet-Lite (the
//! committed parity fixture, its config in the weights' metadata) standing in for the ImageNet Lite0, on
//! the committed tiny image sets; and the one-line refusals of bad FD input.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use boot_sdk::candle::Device;
use common::{assert_input_error, eval_json, run, small_config};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn images(name: &str) -> String {
    repo().join("tests/tests/fixtures/fd").join(name).display().to_string()
}

/// Writes the tiny random network with its config as `efficientnet_lite` metadata into `dir`.
fn tiny_network(dir: &Path) -> PathBuf {
    let fixtures = repo().join("models/tests/fixtures/efficientnet_lite");
    let tensors = boot_sdk::io::load_safetensors(&fixtures.join("tiny.safetensors"), &Device::Cpu).unwrap();
    let config = std::fs::read_to_string(fixtures.join("tiny.config.json")).unwrap();
    let path = dir.join("tiny-net.safetensors");
    boot_sdk::io::save_safetensors(&path, &tensors, Some(HashMap::from([("efficientnet_lite".to_string(), config)]))).unwrap();
    path
}

/// A small analytic run with the tiny FD network and `extra` more `[eval]` keys.
fn fd_config(dir: &Path, extra: &str) -> String {
    let net = tiny_network(dir);
    small_config(dir, 3, &format!("fd_network = \"{}\"\n{extra}", net.display()))
}

fn fd_stats(dir: &Path, cfg: &str, data: &str, key: Option<&str>, out: &str) -> std::process::Output {
    let mut args = vec!["fd-stats", "--config", cfg, "--data", data, "--out", out];
    if let Some(k) = key {
        args.extend(["--key", k]);
    }
    run(&args, &[], dir)
}

#[test]
fn fd_stats_then_eval_reports_fd_per_sampler() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fd_config(dir.path(), "fd_stats = \"stats.safetensors\"");
    let out = fd_stats(dir.path(), &cfg, &images("images.npz"), Some("x_train"), "stats.safetensors");
    assert!(out.status.success(), "fd-stats failed: {}", String::from_utf8_lossy(&out.stderr));
    let (stats, meta) = boot_sdk::io::load_safetensors_with_metadata(&dir.path().join("stats.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(stats["mean"].dims(), &[320]);
    assert_eq!(stats["cov"].dims(), &[320, 320]);
    assert_eq!(stats["count"].to_vec1::<i64>().unwrap(), vec![16]);
    assert_eq!(meta["image"], "3x8x8");

    // The teacher's baseline needs no checkpoint and has no student row.
    let out = run(&["eval", "--config", &cfg, "--teacher-only", "--out", "teacher.json"], &[], dir.path());
    assert!(out.status.success(), "teacher-only eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let baseline: boot_sdk::serde_json::Value = boot_sdk::serde_json::from_slice(&std::fs::read(dir.path().join("teacher.json")).unwrap()).unwrap();
    assert!(baseline.get("student_1").is_none());

    let out = run(&["--config", &cfg], &[], dir.path());
    assert!(out.status.success(), "training failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = eval_json(&dir.path().join("out"));
    for sampler in ["teacher_ddim_1", "teacher_ddim_10", "student_1"] {
        let fd = report[sampler]["fd"].as_f64().expect("fd");
        assert!(fd.is_finite() && fd > 0.0, "{sampler}: fd {fd}");
        assert_eq!(report[sampler]["fd_samples"], 64);
    }
    // Same noise, same teacher: the baseline's rows are the trained run's.
    for sampler in ["teacher_ddim_1", "teacher_ddim_10"] {
        assert_eq!(baseline[sampler]["fd"], report[sampler]["fd"], "{sampler}");
    }
    // The live weights are evaluated on request, into another file.
    let out = run(&["eval", "--config", &cfg, "--live", "--out", "live.json"], &[], dir.path());
    assert!(out.status.success(), "live eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let live: boot_sdk::serde_json::Value = boot_sdk::serde_json::from_slice(&std::fs::read(dir.path().join("live.json")).unwrap()).unwrap();
    assert!(live["student_1"]["fd"].as_f64().is_some_and(f64::is_finite));
    assert_ne!(live["student_1"]["fd"], report["student_1"]["fd"], "the live weights are not the EMA's");
}

#[test]
fn fd_stats_reads_safetensors_and_eval_without_stats_has_no_fd() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fd_config(dir.path(), "");
    let out = fd_stats(dir.path(), &cfg, &images("images.safetensors"), None, "s.safetensors");
    assert!(out.status.success(), "fd-stats failed: {}", String::from_utf8_lossy(&out.stderr));
    let stats = boot_sdk::io::load_safetensors(&dir.path().join("s.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(stats["count"].to_vec1::<i64>().unwrap(), vec![12]);
    let out = run(&["--config", &cfg], &[], dir.path());
    assert!(out.status.success(), "training failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(eval_json(&dir.path().join("out"))["student_1"].get("fd").is_none());
}

#[test]
fn bad_fd_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing statistics: refused before training.
    let cfg = fd_config(d, "fd_stats = \"nosuch.safetensors\"");
    assert_input_error(&run(&["--config", &cfg], &[], d), &["nosuch.safetensors", "fd-stats"]);
    assert!(!d.join("out").exists());
    // Missing network: the hint names the fetch script.
    let cfg = small_config(d, 3, "fd_stats = \"stats.safetensors\"\nfd_network = \"gone.safetensors\"");
    assert_input_error(&run(&["--config", &cfg], &[], d), &["gone.safetensors", "fetch_efficientnet_lite0.sh"]);
    // Several arrays and no --key; a missing key; wrong dtype.
    let cfg = fd_config(d, "");
    assert_input_error(&fd_stats(d, &cfg, &images("images.npz"), None, "s.safetensors"), &["images.npz", "x_train", "--key"]);
    assert_input_error(&fd_stats(d, &cfg, &images("images.npz"), Some("x_test"), "s.safetensors"), &["images.npz", "x_test"]);
    let floats = d.join("floats.safetensors");
    let t = boot_sdk::candle::Tensor::zeros((4, 8, 8), boot_sdk::candle::DType::F32, &Device::Cpu).unwrap();
    boot_sdk::io::save_safetensors(&floats, &HashMap::from([("x".to_string(), t)]), None).unwrap();
    assert_input_error(&fd_stats(d, &cfg, &floats.display().to_string(), None, "s.safetensors"), &["floats.safetensors", "uint8"]);
    // Statistics of the wrong shape.
    let bad = HashMap::from([
        ("mean".to_string(), boot_sdk::candle::Tensor::zeros(7, boot_sdk::candle::DType::F64, &Device::Cpu).unwrap()),
        ("cov".to_string(), boot_sdk::candle::Tensor::zeros((7, 7), boot_sdk::candle::DType::F64, &Device::Cpu).unwrap()),
        ("count".to_string(), boot_sdk::candle::Tensor::new(&[5i64], &Device::Cpu).unwrap()),
    ]);
    let out = fd_stats(d, &cfg, &images("images.safetensors"), None, "good.safetensors");
    assert!(out.status.success());
    let (_, meta) = boot_sdk::io::load_safetensors_with_metadata(&d.join("good.safetensors"), &Device::Cpu).unwrap();
    boot_sdk::io::save_safetensors(&d.join("bad.safetensors"), &bad, Some(meta)).unwrap();
    let cfg = fd_config(d, "fd_stats = \"bad.safetensors\"");
    assert_input_error(&run(&["eval", "--config", &cfg], &[], d), &["bad.safetensors", "mean", "[320]"]);
}
