//! The sd teacher against diffusers' StableDiffusionPipeline (fixtures: `scripts/fixtures/make_sd_fixtures.py`)
//! on tiny random SD 2.x base (epsilon), SD 2.x 768 (v_prediction) and SD 1.x (fp16 weights) folders: prompt
//! embeddings (tokenizer + CLIP text encoder, the empty prompt as the null condition), the guided (CFG 7.5)
//! signal prediction, a full DDIM-10 sample and the VAE decode, each to 1e-4; and bad folders.
//!
//! The DDIM mapping is the diffusers plugin's (`plugins/diffusers/tests/diffusers_teacher.rs`): timestep `tau`
//! is time `tau / 999` on the native schedule; `DDIMScheduler` with `timestep_spacing = "trailing"` and
//! `set_alpha_to_one = True` is boot's DDIM on the grid `tau_k / 999`. Guidance is the same formula in both:
//! `f(n) + w (f(c) - f(n))` on eps in diffusers and on x0 in boot, equal because x0 is affine in eps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_core::guidance::{Cfg, CfgWeight};
use boot_core::samplers::TeacherSampling;
use boot_kit::testing::{input_error_line, rel_err};
use boot_plugin_sd::SdTeacher;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::serde_json::{self, json, Value};
use boot_sdk::{Guidance, Teacher, TeacherConfig, TeacherContext, Times};

const PIPELINES: [&str; 3] = ["sd2-tiny", "sd2v-tiny", "sd1-tiny"];
const PROMPTS: [&str; 3] = ["a photo of a cat", "portrait of a raccoon wearing glasses, oil painting", ""];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn ctx(base_dir: &Path) -> TeacherContext {
    TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: base_dir.to_path_buf() }
}

fn config(path: &str, prompts: &str) -> Box<dyn TeacherConfig> {
    serde_json::from_value(json!({ "kind": "sd", "path": path, "prompts": prompts })).expect("teacher config")
}

fn teacher(name: &str) -> Arc<dyn Teacher> {
    config(name, "prompts.txt").build(&ctx(&fixtures())).expect("teacher")
}

fn io(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixtures().join(format!("{name}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.to_vec1::<i64>().expect("int64 timesteps")
}

fn prompts() -> Vec<String> {
    PROMPTS.iter().map(|p| p.to_string()).collect()
}

fn cfg() -> Cfg {
    Cfg { weight: CfgWeight::Fixed(7.5), threshold: Default::default() }
}

fn check(what: &str, got: &Tensor, want: &Tensor) {
    let err = rel_err(got, want).unwrap();
    println!("{what}: rel err {err:.2e}");
    assert!(err <= 1e-4, "{what}: {err:e}");
}

#[test]
fn prompt_embeddings_match_encode_prompt() {
    for name in PIPELINES {
        let t = teacher(name);
        let m = io(name);
        let cond = t.prompt_cond(&prompts()).unwrap();
        check(&format!("{name} prompt_embeds"), &cond.text.as_ref().unwrap().embeddings, &m["prompt_embeds"]);
        // The context dataset's table (prompts.txt holds the first two prompts) and the null condition.
        let sd = t.as_any().downcast_ref::<SdTeacher>().unwrap();
        let table = sd.dataset().table().unwrap().cond(&[1, 0]).unwrap();
        let want = Tensor::cat(&[m["prompt_embeds"].narrow(0, 1, 1).unwrap(), m["prompt_embeds"].narrow(0, 0, 1).unwrap()], 0).unwrap();
        check(&format!("{name} table"), &table.text.as_ref().unwrap().embeddings, &want);
        let null = t.null_cond(&table).unwrap();
        check(&format!("{name} null"), &null.text.as_ref().unwrap().embeddings, &m["null_embeds"].broadcast_as((2, 77, 32)).unwrap().contiguous().unwrap());
    }
}

#[test]
fn guided_signal_predictions_match_diffusers() {
    for name in PIPELINES {
        let t = teacher(name);
        let m = io(name);
        let schedule = t.native_schedule().expect("native schedule");
        let cond = t.prompt_cond(&prompts()).unwrap();
        for (i, tau) in ints(&m["timesteps"]).into_iter().enumerate() {
            let times = Times::constant(schedule.as_ref(), tau as f64 / 999.0, PROMPTS.len());
            let x0 = cfg().denoise(t.as_ref(), &m["x"], &times, &cond, None).unwrap();
            check(&format!("{name} timestep {tau}"), &x0, &m[&format!("x0_{i}")]);
        }
    }
}

#[test]
fn ddim_and_decode_match_the_pipeline() {
    for name in PIPELINES {
        let t = teacher(name);
        let m = io(name);
        let schedule = t.native_schedule().expect("native schedule");
        let grid: Vec<f64> = ints(&m["ddim10_timesteps"]).into_iter().map(|tau| tau as f64 / 999.0).collect();
        let cond = t.prompt_cond(&prompts()).unwrap();
        let guidance = cfg();
        let sampling = TeacherSampling { teacher: t.as_ref(), guidance: &guidance, schedule: schedule.as_ref(), cond: &cond, w: None, t_max: grid[0], t_min: 0.0 };
        let x = sampling.ddim_on(&m["noise"], &grid).unwrap();
        check(&format!("{name} DDIM-10"), &x, &m["ddim10"]);
        check(&format!("{name} decode"), &t.decode(&m["ddim10"]).unwrap(), &m["decoded"]);
    }
}

#[test]
fn the_context_dataset_draws_per_sample() {
    let t = teacher("sd2-tiny");
    let a = t.sample_cond(&[5, 6, 7, 8]).unwrap();
    let b = t.sample_cond(&[7]).unwrap();
    let rows = |c: &boot_sdk::Cond, i| c.text.as_ref().unwrap().embeddings.narrow(0, i, 1).unwrap();
    assert_eq!(rel_err(&rows(&a, 2), &rows(&b, 0)).unwrap(), 0.0, "a sample's prompt does not depend on its batch");
    assert_eq!(t.cond_spec().text, Some((77, 32)));
}

/// A copy of pipeline `name` in a temporary folder (with the prompts file), changed by `edit(folder)`.
fn broken(name: &str, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
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
    copy(&fixtures().join(name), dir.path());
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
    input_error_line(&config(".", "prompts.txt").build(&ctx(dir)).err().expect("must fail"))
}

#[test]
fn a_broken_folder_is_one_line_naming_file_and_key() {
    let cases: Vec<(Box<dyn FnOnce(&Path)>, &[&str])> = vec![
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.remove("vae")))), &["model_index.json", "vae", "missing"]),
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.insert("text_encoder_2".into(), json!(["transformers", "CLIPTextModelWithProjection"]))))), &["model_index.json", "text_encoder_2"]),
        (Box::new(|p: &Path| edit_json(&p.join("model_index.json"), |o| drop(o.insert("unet".into(), json!(["diffusers", "UNet2DModel"]))))), &["model_index.json", "unet", "UNet2DModel"]),
        (Box::new(|p: &Path| edit_json(&p.join("scheduler/scheduler_config.json"), |o| drop(o.insert("prediction_type".into(), json!("noise"))))), &["scheduler_config.json", "prediction_type", "noise"]),
        (Box::new(|p: &Path| edit_json(&p.join("unet/config.json"), |o| drop(o.insert("block_out_channels".into(), json!([32, 48]))))), &["unet", "diffusion_pytorch_model.safetensors", "shape"]),
        (Box::new(|p: &Path| edit_json(&p.join("unet/config.json"), |o| drop(o.insert("cross_attention_dim".into(), json!(64))))), &["unet", "config.json", "cross_attention_dim"]),
        (Box::new(|p: &Path| std::fs::write(p.join("tokenizer/tokenizer.json"), "{").unwrap()), &["tokenizer", "tokenizer.json"]),
        (Box::new(|p: &Path| std::fs::remove_file(p.join("vae/diffusion_pytorch_model.safetensors")).unwrap()), &["vae", "diffusion_pytorch_model.safetensors", "missing"]),
        (Box::new(|p: &Path| std::fs::write(p.join("prompts.txt"), "\n\n").unwrap()), &["prompts.txt", "no prompts"]),
    ];
    for (edit, words) in cases {
        let d = broken("sd2-tiny", edit);
        let line = error_of(d.path());
        assert!(words.iter().all(|w| line.contains(w)), "expected {words:?} in: {line}");
    }
    // The text encoder's weights are read when prompts are first encoded (then dropped).
    let d = broken("sd2-tiny", |p| edit_json(&p.join("text_encoder/config.json"), |o| drop(o.insert("intermediate_size".into(), json!(40)))));
    let t = config(".", "prompts.txt").build(&ctx(d.path())).unwrap();
    let line = input_error_line(&t.sample_cond(&[1]).err().unwrap());
    assert!(["text_encoder", "model.safetensors", "shape"].iter().all(|w| line.contains(w)), "{line}");
    let line = input_error_line(&config("nowhere", "prompts.txt").build(&ctx(&fixtures())).err().unwrap());
    assert!(line.contains("teacher.path"), "{line}");
    let line = input_error_line(&config("sd2-tiny", "missing.txt").build(&ctx(&fixtures())).err().unwrap());
    assert!(line.contains("teacher.prompts"), "{line}");
}
