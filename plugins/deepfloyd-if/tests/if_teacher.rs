//! The IF stage I teacher against diffusers' IFPipeline (fixtures: `scripts/fixtures/make_if_fixtures.py`) on a
//! tiny random IF-I folder (sharded T5 text encoder, the real T5 tokenizer, the IF UNet with learned variance,
//! DDPMScheduler learned_range): prompt embeddings (lowercased / stripped prompts, T5 with the attention mask, the
//! empty prompt as the null condition), the guided (CFG 7.0 on eps) signal prediction, the same with dynamic
//! thresholding (diffusers' `_threshold_sample`, ratio 0.95, sample_max_value 1.5) and a full DDIM-10 sample,
//! each to 1e-4; and bad folders.
//!
//! The DDIM mapping is the sd plugin's: timestep `tau` is time `tau / 999` on the native schedule;
//! `DDIMScheduler` with `timestep_spacing = "trailing"` and `set_alpha_to_one = True` is boot's DDIM on the grid
//! `tau_k / 999`. Guidance: `f(n) + w (f(c) - f(n))` on eps in diffusers and on x0 in boot, equal because x0
//! is affine in eps (the variance half of the output is unused by both).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_core::guidance::{Cfg, CfgWeight};
use boot_core::samplers::TeacherSampling;
use boot_kit::testing::{input_error_line, rel_err};
use boot_plugin_deepfloyd_if::IfTeacher;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::serde_json::{self, json, Value};
use boot_sdk::threshold::Threshold;
use boot_sdk::{Guidance, Teacher, TeacherConfig, TeacherContext, Times};

const NAME: &str = "if1-tiny";
const PROMPTS: [&str; 3] = ["A photo of a Corgi wearing a beret  ", "portrait of a raccoon, oil painting", ""];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn ctx(base_dir: &Path, dtype: DType) -> TeacherContext {
    TeacherContext { device: Device::Cpu, dtype, base_dir: base_dir.to_path_buf() }
}

fn config(path: &str, prompts: &str) -> Box<dyn TeacherConfig> {
    serde_json::from_value(json!({ "kind": "if", "path": path, "prompts": prompts })).expect("teacher config")
}

fn teacher() -> Arc<dyn Teacher> {
    config(NAME, "prompts.txt").build(&ctx(&fixtures(), DType::F32)).expect("teacher")
}

fn io() -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixtures().join(format!("{NAME}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.to_vec1::<i64>().expect("int64 timesteps")
}

fn prompts() -> Vec<String> {
    PROMPTS.iter().map(|p| p.to_string()).collect()
}

fn cfg(threshold: Threshold) -> Cfg {
    Cfg { weight: CfgWeight::Fixed(7.0), threshold }
}

const IF_THRESHOLD: Threshold = Threshold::Dynamic { percentile: 0.95, max_value: Some(1.5) };

fn check(what: &str, got: &Tensor, want: &Tensor) {
    let err = rel_err(got, want).unwrap();
    println!("{what}: rel err {err:.2e}");
    assert!(err <= 1e-4, "{what}: {err:e}");
}

#[test]
fn prompt_embeddings_match_encode_prompt() {
    let t = teacher();
    let m = io();
    let cond = t.prompt_cond(&prompts()).unwrap();
    check("prompt_embeds", &cond.text.as_ref().unwrap().embeddings, &m["prompt_embeds"]);
    // The context dataset's table (prompts.txt holds the first two prompts) and the null condition.
    let teacher = t.as_any().downcast_ref::<IfTeacher>().unwrap();
    let table = teacher.dataset().table().unwrap().cond(&[1, 0]).unwrap();
    let want = Tensor::cat(&[m["prompt_embeds"].narrow(0, 1, 1).unwrap(), m["prompt_embeds"].narrow(0, 0, 1).unwrap()], 0).unwrap();
    check("table", &table.text.as_ref().unwrap().embeddings, &want);
    let null = t.null_cond(&table).unwrap();
    check("null", &null.text.as_ref().unwrap().embeddings, &m["null_embeds"].broadcast_as((2, 77, 16)).unwrap().contiguous().unwrap());
    assert!(null.text.as_ref().unwrap().mask.is_none(), "IFPipeline gives the UNet no mask");
    assert_eq!(t.cond_spec().text, Some((77, 16)));
    assert_eq!(t.sample_shape(), [3, 16, 16]);
}

#[test]
fn guided_and_thresholded_signal_predictions_match_diffusers() {
    let t = teacher();
    let m = io();
    let schedule = t.native_schedule().expect("native schedule");
    let cond = t.prompt_cond(&prompts()).unwrap();
    for (i, tau) in ints(&m["timesteps"]).into_iter().enumerate() {
        let times = Times::constant(schedule.as_ref(), tau as f64 / 999.0, PROMPTS.len());
        let x0 = cfg(Threshold::None).denoise(t.as_ref(), &m["x"], &times, &cond, None).unwrap();
        check(&format!("guided x0, timestep {tau}"), &x0, &m[&format!("x0_{i}")]);
        let thr = cfg(IF_THRESHOLD).denoise(t.as_ref(), &m["x"], &times, &cond, None).unwrap();
        check(&format!("thresholded x0, timestep {tau}"), &thr, &m[&format!("x0_thr_{i}")]);
        // The sdk's thresholding is diffusers' `_threshold_sample` on the same input.
        check(&format!("_threshold_sample, timestep {tau}"), &IF_THRESHOLD.apply(&m[&format!("x0_{i}")]).unwrap(), &m[&format!("x0_thr_{i}")]);
    }
}

#[test]
fn ddim_matches_the_pipeline_loop() {
    let t = teacher();
    let m = io();
    let schedule = t.native_schedule().expect("native schedule");
    let grid: Vec<f64> = ints(&m["ddim10_timesteps"]).into_iter().map(|tau| tau as f64 / 999.0).collect();
    let cond = t.prompt_cond(&prompts()).unwrap();
    let guidance = cfg(Threshold::None);
    let sampling = TeacherSampling { teacher: t.as_ref(), guidance: &guidance, schedule: schedule.as_ref(), cond: &cond, w: None, t_max: grid[0], t_min: 0.0 };
    let x = sampling.ddim_on(&m["noise"], &grid).unwrap();
    check("DDIM-10", &x, &m["ddim10"]);
    assert_eq!(rel_err(&t.decode(&x).unwrap(), &x).unwrap(), 0.0, "a pixel-space teacher decodes to itself");
}

#[test]
fn bf16_builds_and_f16_is_refused() {
    let line = input_error_line(&config(NAME, "prompts.txt").build(&ctx(&fixtures(), DType::F16)).err().expect("f16 must fail"));
    assert!(["run.dtype", "f16 refused", "T5"].iter().all(|w| line.contains(w)), "{line}");
    // bf16 builds (the UNet stored in bf16; T5 accepts it). Running it needs a CUDA device (candle's CPU
    // matmul has no bf16), so only the weights are checked here.
    let t = config(NAME, "prompts.txt").build(&ctx(&fixtures(), DType::BF16)).unwrap();
    let teacher = t.as_any().downcast_ref::<IfTeacher>().unwrap();
    assert!(teacher.weights().values().all(|w| w.dtype() == DType::BF16));
}

#[test]
fn the_context_dataset_draws_per_sample() {
    let t = teacher();
    let a = t.sample_cond(&[5, 6, 7, 8]).unwrap();
    let b = t.sample_cond(&[7]).unwrap();
    let rows = |c: &boot_sdk::Cond, i| c.text.as_ref().unwrap().embeddings.narrow(0, i, 1).unwrap();
    assert_eq!(rel_err(&rows(&a, 2), &rows(&b, 0)).unwrap(), 0.0, "a sample's prompt does not depend on its batch");
}

/// A copy of the fixture folder in a temporary folder (with the prompts file), changed by `edit(folder)`.
fn broken(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for f in std::fs::read_dir(from).unwrap().flatten() {
            if f.path().is_dir() {
                copy(&f.path(), &to.join(f.file_name()));
            } else {
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixtures().join(NAME), dir.path());
    std::fs::copy(fixtures().join("prompts.txt"), dir.path().join("prompts.txt")).unwrap();
    edit(dir.path());
    dir
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn error_of(dir: &Path) -> String {
    input_error_line(&config(".", "prompts.txt").build(&ctx(dir, DType::F32)).err().expect("must fail"))
}

#[test]
fn a_broken_folder_is_one_line_naming_file_and_key() {
    let cases: Vec<(Box<dyn FnOnce(&Path)>, &[&str])> = vec![
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.remove("text_encoder")))), &["model_index.json", "text_encoder", "missing"]),
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.insert("text_encoder".into(), json!(["transformers", "CLIPTextModel"]))))), &["model_index.json", "text_encoder", "CLIPTextModel"]),
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.insert("image_noising_scheduler".into(), json!(["diffusers", "DDPMScheduler"]))))), &["model_index.json", "image_noising_scheduler", "stage II"]),
        (Box::new(|p: &Path| edit_json(&p.join("scheduler/scheduler_config.json"), |o| drop(o.insert("prediction_type".into(), json!("noise"))))), &["scheduler_config.json", "prediction_type", "noise"]),
        (Box::new(|p: &Path| edit_json(&p.join("scheduler/scheduler_config.json"), |o| drop(o.insert("variance_type".into(), json!("fixed_small"))))), &["unet", "config.json", "out_channels"]),
        (Box::new(|p: &Path| edit_json(&p.join("unet/config.json"), |o| drop(o.insert("block_out_channels".into(), json!([16, 32]))))), &["unet", "diffusion_pytorch_model.safetensors", "shape"]),
        (Box::new(|p: &Path| edit_json(&p.join("unet/config.json"), |o| drop(o.insert("encoder_hid_dim".into(), json!(24))))), &["unet", "config.json", "encoder_hid_dim"]),
        (Box::new(|p: &Path| std::fs::write(p.join("tokenizer/tokenizer.json"), "{").unwrap()), &["tokenizer", "tokenizer.json"]),
        (Box::new(|p: &Path| std::fs::remove_file(p.join("unet/diffusion_pytorch_model.safetensors")).unwrap()), &["unet", "diffusion_pytorch_model.safetensors", "missing"]),
        (Box::new(|p: &Path| std::fs::remove_file(p.join("text_encoder/model.safetensors.index.json")).unwrap()), &["text_encoder", "model.safetensors", "missing"]),
        (Box::new(|p: &Path| std::fs::write(p.join("prompts.txt"), "\n\n").unwrap()), &["prompts.txt", "no prompts"]),
    ];
    for (edit, words) in cases {
        let d = broken(edit);
        let line = error_of(d.path());
        assert!(words.iter().all(|w| line.contains(w)), "expected {words:?} in: {line}");
    }
    // Optional components of the real folders (safety checker, watermarker) present: ignored.
    let d = broken(|p| edit_json(&p.join("model_index.json"), |o| drop(o.insert("watermarker".into(), json!(["deepfloyd_if", "IFWatermarker"])))));
    config(".", "prompts.txt").build(&ctx(d.path(), DType::F32)).expect("optional components are ignored");
    // The text encoder's weights are read when prompts are first encoded (then dropped); a bad shard names it.
    let d = broken(|p| edit_json(&p.join("text_encoder/config.json"), |o| drop(o.insert("d_ff".into(), json!(40)))));
    let t = config(".", "prompts.txt").build(&ctx(d.path(), DType::F32)).unwrap();
    let line = input_error_line(&t.sample_cond(&[1]).err().unwrap());
    assert!(["text_encoder", "model.safetensors.index.json", "shape"].iter().all(|w| line.contains(w)), "{line}");
    let line = input_error_line(&config("nowhere", "prompts.txt").build(&ctx(&fixtures(), DType::F32)).err().unwrap());
    assert!(line.contains("teacher.path"), "{line}");
    let line = input_error_line(&config(NAME, "missing.txt").build(&ctx(&fixtures(), DType::F32)).err().unwrap());
    assert!(line.contains("teacher.prompts"), "{line}");
}
