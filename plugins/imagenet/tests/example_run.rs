//! The examples through the built `boot-host`: `examples/imagenet-tiny.toml` trains, evaluates and writes
//! its outputs; `examples/imagenet64.toml` parses completely and stops at the (user-supplied) checkpoint.
//! Needs the workspace built first (`cargo build --release --workspace`, as the README's test command does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boot_sdk::serde_json::{self, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn boot_host(args: &[&str], env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>").join("boot-host");
    assert!(bin.is_file(), "{} is missing: run `cargo build --release --workspace` before the tests", bin.display());
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(root()).env("BOOT_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run boot-host")
}

#[test]
fn tiny_example_runs_end_to_end() {
    let out = std::env::temp_dir().join(format!("boot-imagenet-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let out_s = out.display().to_string();
    let env = [("BOOT__RUN__OUT_DIR", out_s.as_str()), ("BOOT__TRAIN__STEPS", "3")];
    let run = boot_host(&["--config", "examples/imagenet-tiny.toml"], &env);
    assert!(run.status.success(), "training failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let eval: Value = serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).expect("eval.json")).expect("json");
    for k in ["student_1", "teacher_ddim_1", "teacher_ddim_4"] {
        let mse = eval[k]["ode_mse"].as_f64().unwrap_or_else(|| panic!("{k}.ode_mse in {eval}"));
        assert!(mse.is_finite(), "{k}: {mse}");
    }
    assert!(eval["teacher_ddim_4"]["ode_mse"].as_f64() < eval["teacher_ddim_1"]["ode_mse"].as_f64(), "more DDIM steps are closer to the ODE");
    for f in ["metrics.jsonl", "checkpoints/step-00000003.safetensors", "grids/step-00000003.png"] {
        assert!(out.join(f).is_file(), "{f} was not written");
    }
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn imagenet64_example_parses_and_names_the_missing_checkpoint() {
    let run = boot_host(&["--config", "examples/imagenet64.toml"], &[("BOOT__RUN__DEVICE", "cpu")]);
    assert_eq!(run.status.code(), Some(2), "an input error");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let line = stderr.trim();
    assert!(!line.contains('\n') && line.contains("imagenet64-x0.pt") && line.contains("cannot read file"), "{line}");
}
