//! `examples/if-stage1-tiny.toml` through the built `boot-host`: a DeepFloyd IF stage I folder (the tiny
//! random-weight parity fixture) distilled from a prompts file with CFG 7.0 and IF's dynamic thresholding, end
//! to end on a CPU, then one-step text-to-image with `boot-host sample --prompt`, the samples snapshotted as
//! rounded summaries (2 decimals; update with `INSTA_UPDATE=always cargo test --release -p boot-tests --test
//! if_example`).

mod common;

use std::path::PathBuf;

use boot_kit::testing::summary;
use boot_sdk::candle::Device;
use common::{eval_json, logged_losses, run};

#[test]
fn if_stage1_tiny_example_trains_and_samples_from_prompts() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let env = [("BOOT__RUN__OUT_DIR", out_s.as_str())];
    let res = run(&["--config", "examples/if-stage1-tiny.toml"], &env, &root);
    assert!(res.status.success(), "if-stage1-tiny failed:\n{}", String::from_utf8_lossy(&res.stderr));
    let eval = eval_json(&out);
    for k in ["student_1", "teacher_ddim_1", "teacher_ddim_10"] {
        assert!(eval[k]["ode_mse"].as_f64().is_some_and(f64::is_finite), "{k} in {eval}");
    }
    assert_eq!(logged_losses(&out).len(), 3);
    assert!(out.join("grids/step-00000006.png").is_file());

    let samples = dir.path().join("corgi.safetensors");
    let samples_s = samples.display().to_string();
    let args = ["sample", "--config", "examples/if-stage1-tiny.toml", "--prompt", "A Corgi astronaut", "--prompt", "a red car", "--count", "2", "--out", samples_s.as_str()];
    let res = run(&args, &env, &root);
    assert!(res.status.success(), "sample --prompt failed:\n{}", String::from_utf8_lossy(&res.stderr));
    for i in 0..4 {
        assert!(dir.path().join(format!("corgi-{i:03}.png")).is_file(), "image {i}");
    }
    let t = boot_sdk::io::load_safetensors(&samples, &Device::Cpu).unwrap();
    insta::assert_json_snapshot!("if_stage1_tiny_student_samples", summary(&t["samples"], 2).unwrap());
}
