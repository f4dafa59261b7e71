//! Bad input gets one line naming the file and key (or tensor), exit code 2, and nothing written.

mod common;

use std::path::Path;

use common::{assert_input_error, bin_dir, run, small_config, write};

/// Runs training on `cfg` (in `dir`) and checks the error and that no output folder appeared.
fn expect_refusal(dir: &Path, cfg: &str, env: &[(&str, &str)], needles: &[&str]) {
    let out = run(&["--config", cfg], env, dir);
    assert_input_error(&out, needles);
    assert!(!dir.join("out").exists(), "the run wrote {} despite bad input", dir.join("out").display());
}

#[test]
fn unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("batch_size = 32", "batch_size = 32\nbatchsize = 8")).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["run.toml", "batchsize"]);
}

#[test]
fn unknown_key_inside_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "[solver]\nkind = \"heun\"\norder = 3\n");
    expect_refusal(dir.path(), &cfg, &[], &["run.toml", "solver", "order"]);
}

#[test]
fn unknown_component_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    expect_refusal(dir.path(), &cfg, &[("BOOT__SOLVER__KIND", "rk4")], &["run.toml", "solver", "rk4"]);
}

#[test]
fn wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("batch_size = 32", "batch_size = \"many\"")).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["run.toml", "train.batch_size"]);
}

#[test]
fn micro_batch_out_of_range() {
    for bad in ["0", "33"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_config(dir.path(), 5, "");
        std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("batch_size = 32", &format!("batch_size = 32\nmicro_batch = {bad}"))).unwrap();
        expect_refusal(dir.path(), &cfg, &[], &["run.toml", "train.micro_batch"]);
    }
}

#[test]
fn missing_plugin_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("plugins = [\"analytic\"]", "plugins = [\"analytic\", \"nosuch\"]")).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["run.toml", "run.plugins", "nosuch"]);
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("\"nosuch\"", "\"./libs/libboot_plugin_gone.so\"")).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["run.toml", "run.plugins", "libboot_plugin_gone.so"]);
}

#[test]
fn plugin_built_against_another_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let lib = bin_dir().join("libboot_testplugin_mismatched.so");
    assert!(lib.is_file(), "{} is missing: build the workspace first", lib.display());
    let cfg = small_config(dir.path(), 5, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("plugins = [\"analytic\"]", &format!("plugins = [\"{}\"]", lib.display()));
    std::fs::write(&cfg, text).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["libboot_testplugin_mismatched.so", "sdk 0.0.1", "rebuild the plugin"]);
}

#[test]
fn a_kind_name_registered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let lib = bin_dir().join("libboot_testplugin_duplicate.so");
    assert!(lib.is_file(), "{} is missing: build the workspace first", lib.display());
    let cfg = small_config(dir.path(), 5, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("plugins = [\"analytic\"]", &format!("plugins = [\"analytic\", \"{}\"]", lib.display()));
    std::fs::write(&cfg, text).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["libboot_testplugin_duplicate.so", "teacher kind `analytic`", "already provided by `analytic`"]);
}

#[test]
fn truncated_safetensors_mixture() {
    let dir = tempfile::tempdir().unwrap();
    // A valid header claiming 64 bytes of data, with only 10 present.
    let header = br#"{"means":{"dtype":"F32","shape":[1,1,2,2],"data_offsets":[0,16]},"weights":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"std":{"dtype":"F32","shape":[],"data_offsets":[20,24]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 10]);
    std::fs::write(dir.path().join("mixture.safetensors"), bytes).unwrap();
    let cfg = small_config(dir.path(), 5, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("kind = \"analytic\"\n", "kind = \"analytic\"\nmixture = \"mixture.safetensors\"\n");
    let text = text.replace("components = 4\nchannels = 3\nsize = 8\nnum_classes = 2\n", "");
    std::fs::write(&cfg, text).unwrap();
    expect_refusal(dir.path(), &cfg, &[], &["mixture.safetensors"]);
}

#[test]
fn truncated_noise_file_for_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    let noise = write(dir.path(), "noise.safetensors", "\u{8}\0\0\0\0\0\0\0{\"noise\":");
    let out = run(&["sample", "--config", &cfg, "--sampler", "ddim-2", "--noise", &noise], &[], dir.path());
    assert_input_error(&out, &["noise.safetensors"]);
    assert!(!dir.path().join("out").exists());
}

/// The tests run on CPU builds (CI has no GPU): asking for CUDA is refused with one line.
#[test]
fn cuda_device_without_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 5, "");
    expect_refusal(dir.path(), &cfg, &[("BOOT__RUN__DEVICE", "cuda:0")], &["run.toml", "run.device", "cuda:0"]);
}

#[test]
fn missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--config", "does-not-exist.toml"], &[], dir.path());
    assert_input_error(&out, &["does-not-exist.toml"]);
}
