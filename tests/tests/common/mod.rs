//! Running the built `boot-host` on configs written to a temporary folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/<profile>`, where cargo put boot-host and the plugin libraries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// Path of the built boot-host; the README's test command builds the workspace first.
pub fn boot_host() -> PathBuf {
    let p = bin_dir().join("boot-host");
    assert!(p.is_file(), "{} is missing: run `cargo build --release --workspace` before the tests", p.display());
    p
}

/// Runs boot-host with `args`, extra environment `env`, in `cwd`.
pub fn run(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut cmd = Command::new(boot_host());
    cmd.args(args).current_dir(cwd).env("BOOT_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run boot-host")
}

/// Writes `text` as `name` in `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

/// A small analytic run: 4 components of 3x8x8, a narrow student, `steps` steps, into `dir/out`.
pub fn small_config(dir: &Path, steps: u64, extra: &str) -> String {
    let text = format!(
        r#"
[run]
out_dir = "{out}"
seed = 3
plugins = ["analytic"]

[teacher]
kind = "analytic"
components = 4
channels = 3
size = 8
num_classes = 2

[student]
kind = "analytic-unet"
channels = 16

[train]
steps = {steps}
batch_size = 32
lr = 2e-3
ema_decay = 0.9
checkpoint_every = 10
keep_checkpoints = 2
log_every = 1
grid_every = 0
grid_samples = 4
progress = false

[eval]
samples = 64
batch_size = 64
ddim_steps = [1, 10]
reference_steps = 100
{extra}
"#,
        out = dir.join("out").display()
    );
    write(dir, "run.toml", &text)
}

/// Losses recorded in `metrics.jsonl`, by step.
pub fn logged_losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (v["step"].as_u64().expect("step"), v["loss"].as_f64().expect("loss"))
        })
        .collect()
}

/// `eval.json` of a run.
pub fn eval_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).expect("eval.json")).expect("valid eval.json")
}

/// Asserts a run failed with exit code 2 and one stderr line containing each of `needles`.
pub fn assert_input_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "expected exit code 2, got {:?}; stderr:\n{stderr}", out.status.code());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "error line does not mention `{n}`: {}", lines[0]);
    }
}
