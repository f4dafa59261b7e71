//! The built `boot-host` keeps the user's earlier run (a fresh start over it is refused without
//! `--overwrite`), refuses bf16 where it cannot run, reports progress without a terminal, and does not panic
//! when its stdout is closed early (`boot-host ... | head`).

mod common;

use std::process::{Command, Stdio};

use common::{assert_input_error, boot_host, logged_losses, run, small_config};

const NO_EVAL: (&str, &str) = ("BOOT__EVAL__AFTER_TRAINING", "false");

#[test]
fn a_fresh_start_over_an_earlier_run_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 2, "");
    let out = dir.path().join("out");
    let first = run(&["--config", &cfg], &[NO_EVAL], dir.path());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let ck = out.join("checkpoints/step-00000002.safetensors");
    let before = std::fs::read(&ck).expect("first run's checkpoint");

    let again = run(&["--config", &cfg], &[NO_EVAL, ("BOOT__TRAIN__STEPS", "3")], dir.path());
    assert_input_error(&again, &["run.out_dir", "--resume", "--overwrite"]);
    assert_eq!(std::fs::read(&ck).expect("checkpoint still there"), before);
    assert_eq!(logged_losses(&out).len(), 2, "the earlier metrics log is untouched");

    let both = run(&["--config", &cfg, "--resume", "--overwrite"], &[NO_EVAL], dir.path());
    assert_eq!(both.status.code(), Some(2), "--resume with --overwrite is a usage error");

    let over = run(&["--config", &cfg, "--overwrite"], &[NO_EVAL, ("BOOT__TRAIN__STEPS", "3")], dir.path());
    assert!(over.status.success(), "{}", String::from_utf8_lossy(&over.stderr));
    assert!(!ck.exists(), "--overwrite replaced the earlier run");
    assert!(out.join("checkpoints/step-00000003.safetensors").is_file());
    assert_eq!(logged_losses(&out).len(), 3);
}

#[test]
fn bf16_on_a_cpu_is_one_line_naming_run_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 2, "");
    let res = run(&["--config", &cfg], &[("BOOT__RUN__DTYPE", "bf16"), ("BOOT__RUN__DEVICE", "cpu")], dir.path());
    assert_input_error(&res, &["run.toml", "run.dtype", "bf16", "run.device = \"cuda:0\""]);
    assert!(!dir.path().join("out").exists(), "nothing was written");
    // A dtype the config does not know (f16 is the benchmark's CPU check, not a run option).
    let res = run(&["--config", &cfg], &[("BOOT__RUN__DTYPE", "f16")], dir.path());
    assert_input_error(&res, &["run.toml", "run.dtype", "f16"]);
}

#[test]
fn without_a_terminal_progress_is_logged_every_n_steps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 4, "");
    let env = [NO_EVAL, ("BOOT_LOG", "info"), ("BOOT__TRAIN__PROGRESS", "true"), ("BOOT__TRAIN__PROGRESS_EVERY", "2")];
    let res = run(&["--config", &cfg], &env, dir.path());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("progress")).collect();
    assert_eq!(lines.len(), 2, "steps 2 and 4:\n{stderr}");
    for (line, step) in lines.iter().zip([2, 4]) {
        for field in [format!("step={step}"), "of=4".into(), "loss=".into(), "steps_per_s=".into(), "eta=".into()] {
            assert!(line.contains(&field), "`{field}` missing: {line}");
        }
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // The reader goes away right after the start, long before boot-host (loading its libraries and the
    // plugins) writes: its writes to stdout fail with a broken pipe.
    let mut child = Command::new(boot_host()).arg("plugins").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run boot-host");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("boot-host ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
