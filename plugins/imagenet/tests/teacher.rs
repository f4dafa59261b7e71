//! The ADM teacher through the framework's contract: the official learned-variance model's x0 at its own
//! timesteps, the lambda -> fractional timestep mapping, `.pt` and safetensors checkpoints, strict loading
//! errors, labels and the null-class policies.
//!
//! Teachers are built on `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`); inputs go there too.

mod common;

use std::collections::HashMap;

use boot_plugin_imagenet::{AdmTeacher, AdmTeacherConfig};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::BetaSchedule;
use boot_sdk::serde_json::{self, json};
use boot_sdk::{Cond, NoiseSchedule, TeacherConfig, Times};
use common::*;

/// bf16: the teacher's eps -> x0 conversion (in bf16, as the network's output) against the same in f32 from
/// the same eps; measured on an H200: 3.3e-3.
const BF16_X0_CONVERSION: f64 = 1e-2;

fn adm(t: &dyn boot_sdk::Teacher) -> &AdmTeacher {
    t.as_any().downcast_ref::<AdmTeacher>().expect("an adm teacher")
}

/// Times whose lambda is that of the schedule's integer timesteps `steps` (alpha, sigma = sqrt(alpha_bar),
/// sqrt(1 - alpha_bar)), as guided-diffusion's sampler would call the model.
fn at_timesteps(s: &BetaSchedule, steps: &[f64]) -> Times {
    let (alpha, sigma): (Vec<f64>, Vec<f64>) = steps.iter().map(|&i| s.alpha_sigma_at(i)).unzip();
    Times { t: steps.iter().map(|i| i / 999.0).collect(), lambda: steps.iter().map(|&i| s.lambda_at(i)).collect(), alpha, sigma }
}

fn fixture_labels(m: &HashMap<String, Tensor>) -> Cond {
    Cond::classes(m["y"].to_vec1::<i64>().unwrap().into_iter().map(|v| Some(v as u32)).collect())
}

#[test]
fn eps_teacher_matches_official_pred_xstart() {
    let teacher = teacher(json!({}));
    assert_eq!(teacher.sample_shape(), [3, 16, 16]);
    assert_eq!(teacher.cond_spec().num_classes, Some(10));
    if skip_without_conv("eps_teacher_matches_official_pred_xstart") {
        return;
    }
    let m = io();
    let s = BetaSchedule::cosine(1000).unwrap();
    let steps: Vec<f64> = f64v(&m["timesteps"]);
    let x0 = teacher.denoise(&dev(&m["x"]), &at_timesteps(&s, &steps), &fixture_labels(&m)).unwrap();
    assert_eq!((x0.dtype(), x0.device().location()), (test_dtype(), test_device().location()));
    // guided-diffusion's p_mean_variance(...)["pred_xstart"] (float32, clip_denoised=False), per sample: at
    // t = 999 the values reach 1e4 (sqrt(1 / alpha_bar) = 20291).
    let reference = &m["pmv_pred_xstart_f32"];
    for (i, step) in steps.iter().enumerate() {
        let rel = rel_err(&x0.get(i).unwrap(), &reference.get(i).unwrap());
        println!("PARITY teacher x0 vs pmv_pred_xstart_f32 at timestep {step} [{:?}]: rel_err = {rel:.3e}", test_dtype());
        assert!(rel <= tol(1e-4, BF16_REL_UNET), "timestep {step}: {rel:e}");
    }
}

#[test]
fn native_schedule_is_the_cosine_schedule_and_t_maps_to_timestep_t_times_999() {
    let teacher = teacher(json!({}));
    let native = teacher.native_schedule().expect("a native schedule");
    let cosine = BetaSchedule::cosine(1000).unwrap();
    let den = adm(teacher.as_ref()).denoiser();
    for t in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
        assert_eq!(native.lambda(t), cosine.lambda(t));
        let s = den.discrete().timesteps_of_lambda(&[native.lambda(t)])[0];
        assert!((s - 999.0 * t).abs() < 1e-8, "t = {t}: timestep {s}");
    }
}

/// The framework's continuous time reaches the network as the fractional timestep whose interpolated
/// lambda matches, and the eps -> x0 conversion uses the schedule's alpha, sigma there.
#[test]
fn lambda_is_matched_to_a_fractional_timestep() {
    let teacher = teacher(json!({ "null_class": "zero" }));
    let den = adm(teacher.as_ref()).denoiser();
    // Noise levels beyond the schedule clamp to its ends.
    assert_eq!(den.discrete().timesteps_of_lambda(&[-50.0, 50.0]), vec![0.0, 999.0]);
    if skip_without_conv("lambda_is_matched_to_a_fractional_timestep") {
        return;
    }
    let s = BetaSchedule::cosine(1000).unwrap();
    let x = noise(0, 4);
    let cond = Cond::classes(vec![Some(1), None, Some(5), Some(9)]);
    let steps = [41.5, 123.25, 500.0, 998.75];
    // In f32 on the CPU: the definition, with the network's eps from the test device.
    let direct = {
        let t = dev_cond(&Tensor::new(&[41.5f32, 123.25, 500.0, 998.75], &Device::Cpu).unwrap());
        let labels = den.label_ids(&cond, 4).unwrap();
        let eps = den.unet().forward(&dev(&x), &t, labels.as_deref(), None).unwrap().narrow(1, 0, 3).unwrap();
        let eps = eps.to_device(&Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
        let (a, sg): (Vec<f64>, Vec<f64>) = steps.iter().map(|&i| s.alpha_sigma_at(i)).unzip();
        let col = |v: Vec<f64>| Tensor::from_vec(v.into_iter().map(|x| x as f32).collect::<Vec<_>>(), (4, 1, 1, 1), &Device::Cpu).unwrap();
        let (a, sg) = (col(a), col(sg));
        (x.broadcast_sub(&eps.broadcast_mul(&sg).unwrap()).unwrap()).broadcast_div(&a).unwrap()
    };
    // Times from any schedule with these lambdas, e.g. alpha and sigma given directly.
    let times = at_timesteps(&s, &steps);
    let x0 = teacher.denoise(&dev(&x), &times, &cond).unwrap();
    let rel = rel_err(&x0, &direct);
    println!("teacher at fractional timesteps vs direct network call [{:?}]: rel_err = {rel:.3e}", test_dtype());
    assert!(rel < tol(1e-5, BF16_X0_CONVERSION), "{rel:e}");
}

#[test]
fn pt_checkpoint_loads_like_safetensors() {
    let pt = own_fixtures().join("adm_unet_c10.pt");
    let a = teacher(json!({}));
    let b = teacher(json!({ "checkpoint": pt }));
    assert_eq!(adm(a.as_ref()).weights().len(), 161);
    assert_eq!(adm(b.as_ref()).weights().len(), 161);
    for (k, w) in adm(a.as_ref()).weights().iter() {
        assert_eq!(max_abs(w, &adm(b.as_ref()).weights()[k]), 0.0, "{k}");
    }
    if !skip_without_conv("pt_checkpoint_loads_like_safetensors") {
        let m = io();
        let s = BetaSchedule::cosine(1000).unwrap();
        let times = at_timesteps(&s, &[10.0, 200.0, 600.0, 900.0]);
        let cond = fixture_labels(&m);
        let x = dev(&m["x"]);
        let (ya, yb) = (a.denoise(&x, &times, &cond).unwrap(), b.denoise(&x, &times, &cond).unwrap());
        assert_eq!(max_abs(&ya, &yb), 0.0, "the .pt and the .safetensors checkpoint hold the same weights");
    }

    let nested = own_fixtures().join("nested_state_dict.pt");
    let inner = boot_plugin_imagenet::checkpoint::read_checkpoint(&nested, Some("model")).unwrap();
    assert_eq!(f64v(&inner["w"]), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let line = input_error(&boot_plugin_imagenet::checkpoint::read_checkpoint(&nested, None).unwrap_err());
    assert!(line.contains("state_dict_key"), "{line}");
}

#[test]
fn strict_loading_errors_are_one_line() {
    let base = boot_sdk::io::load_safetensors(&adm_fixtures().join("adm_unet_c10.safetensors"), &Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("boot-imagenet-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let try_load = |tensors: HashMap<String, Tensor>, file: &str| {
        let path = dir.join(file);
        boot_sdk::io::save_safetensors(&path, &tensors, None).unwrap();
        teacher_config(json!({ "checkpoint": path })).build(&ctx()).map(|_| ())
    };

    let mut missing = base.clone();
    missing.remove("middle_block.1.qkv.weight");
    let line = input_error(&try_load(missing, "missing.safetensors").unwrap_err());
    println!("missing: {line}");
    assert!(line.contains("`middle_block.1.qkv.weight`") && line.contains("missing") && line.contains("[96, 32, 1]"), "{line}");

    let mut extra = base.clone();
    extra.insert("label_emb.bias".into(), Tensor::zeros(128, DType::F32, &Device::Cpu).unwrap());
    let line = input_error(&try_load(extra, "extra.safetensors").unwrap_err());
    println!("extra: {line}");
    assert!(line.contains("`label_emb.bias`") && line.contains("unexpected") && line.contains("[128]"), "{line}");

    let mut shaped = base.clone();
    shaped.insert("out.2.weight".into(), Tensor::zeros((3, 32, 3, 3), DType::F32, &Device::Cpu).unwrap());
    let line = input_error(&try_load(shaped, "shape.safetensors").unwrap_err());
    println!("mis-shaped: {line}");
    assert!(line.contains("`out.2.weight`") && line.contains("expected shape [6, 32, 3, 3], found [3, 32, 3, 3]"), "{line}");

    // The config disagreeing with the checkpoint reads the same way: here learn_sigma is off.
    let e = teacher_config(json!({ "learn_sigma": false })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("`out.2.weight`"));
    // ... and here the model is taken as unconditional.
    let e = teacher_config(json!({ "class_cond": false })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("`label_emb.weight`: unexpected tensor (shape [10, 128])"));

    let e = teacher_config(json!({ "checkpoint": "absent.pt" })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("absent.pt"));
    let not_zip = dir.join("garbage.pt");
    std::fs::write(&not_zip, b"not a checkpoint").unwrap();
    let line = input_error(&teacher_config(json!({ "checkpoint": not_zip })).build(&ctx()).unwrap_err());
    println!("garbage: {line}");
    assert!(line.contains("garbage.pt") && line.contains("not a readable PyTorch checkpoint"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_errors_are_input_errors() {
    let cases = [
        (json!({ "labels": [3, 10] }), "teacher.labels"),
        (json!({ "labels": [] }), "teacher.labels"),
        (json!({ "class_cond": false, "labels": [1] }), "unconditional"),
        (json!({ "attention_resolutions": [5] }), "teacher.attention_resolutions"),
        (json!({ "channel_mult": [], "image_size": 16 }), "teacher.channel_mult"),
        (json!({ "num_head_channels": 0 }), "teacher.num_head_channels"),
        (json!({ "diffusion_steps": 1 }), "teacher.diffusion_steps"),
    ];
    for (extra, want) in cases {
        let e = teacher_config(extra.clone()).build(&ctx()).unwrap_err();
        let line = input_error(&e);
        assert!(line.contains(want), "{extra}: {line}");
    }
    for bad in [json!({ "typo": 1 }), json!({ "prediction": "v" }), json!({ "null_class": "row" })] {
        assert!(serde_json::from_value::<Box<dyn TeacherConfig>>(teacher_json(bad.clone())).is_err(), "{bad}");
    }
    // guided-diffusion's defaults (model_and_diffusion_defaults) when keys are left out.
    let cfg: AdmTeacherConfig = serde_json::from_value(json!({ "checkpoint": "x.pt" })).unwrap();
    let u = cfg.unet_config().unwrap();
    assert_eq!((u.image_size, u.model_channels, u.num_res_blocks, u.num_heads, u.num_head_channels), (64, 128, 2, 4, -1));
    assert_eq!((u.attention_resolutions.clone(), u.channel_mult.clone()), (vec![4, 8], vec![1.0, 2.0, 3.0, 4.0]));
    assert!(u.use_scale_shift_norm && !u.resblock_updown && !u.use_new_attention_order && u.num_classes.is_none());
    assert_eq!(u.out_channels, 3);
}

#[test]
fn labels_are_drawn_per_seed() {
    let seeds: Vec<u64> = (0..64).collect();
    let listed = teacher(json!({ "labels": [3, 7] })).sample_cond(&seeds).unwrap().class.unwrap();
    assert!(listed.iter().all(|c| matches!(c, Some(3) | Some(7))));
    assert!(listed.contains(&Some(3)) && listed.contains(&Some(7)));
    let uniform = teacher(json!({}));
    let drawn = uniform.sample_cond(&seeds).unwrap().class.unwrap();
    assert!(drawn.iter().all(|c| c.is_some_and(|c| c < 10)));
    assert_eq!(drawn, uniform.sample_cond(&seeds).unwrap().class.unwrap(), "labels are a function of the seed");
    assert_eq!(drawn[..8], uniform.sample_cond(&seeds[..8]).unwrap().class.unwrap()[..], "and not of the batch");
    let line = input_error(&uniform.denoise(&dev(&noise(0, 1)), &times(&BetaSchedule::cosine(1000).unwrap(), &[0.5]), &Cond::classes(vec![Some(10)])).unwrap_err());
    assert!(line.contains("out of range"), "{line}");
}

#[test]
fn null_class_policies() {
    let s = BetaSchedule::cosine(1000).unwrap();
    let x = dev(&noise(3, 2));
    let tt = times(&s, &[0.3, 0.7]);
    let cond = Cond::classes(vec![Some(2), Some(8)]);

    // "none" (the default, openai's models): CFG's null condition is refused with a config hint.
    let t_none = teacher(json!({}));
    let line = input_error(&t_none.null_cond(&cond).unwrap_err());
    assert!(line.contains("teacher.null_class") && line.contains("extra-row"), "{line}");
    assert!(t_none.denoise(&x, &tt, &cond.with_null_class()).is_err());

    // "zero": the null label adds nothing to the embedding.
    let t_zero = teacher(json!({ "null_class": "zero" }));
    let null = t_zero.null_cond(&cond).unwrap();
    assert_eq!(null.class, Some(vec![None, None]));
    let den = adm(t_zero.as_ref()).denoiser();
    let ts = dev_cond(&Tensor::new(&[299.7f32, 699.3], &Device::Cpu).unwrap());
    let e_null = den.unet().embedding(&ts, Some(&[None, None]), None).unwrap();
    let e_cond = den.unet().embedding(&ts, Some(&[Some(2), Some(8)]), None).unwrap();
    let rows = adm(t_zero.as_ref()).weights()["label_emb.weight"].index_select(&Tensor::new(&[2u32, 8], &test_device()).unwrap(), 0).unwrap();
    assert!(max_abs(&(e_cond - &e_null).unwrap(), &rows) < 1e-6, "emb(c) = emb(null) + label_emb[c]");
    if skip_without_conv("null_class_policies") {
        return;
    }
    let y_null = t_zero.denoise(&x, &tt, &null).unwrap();
    assert!(max_abs(&y_null, &t_zero.denoise(&x, &tt, &cond).unwrap()) > 1e-3, "labels matter");

    // "extra-row" + x0 prediction (BOOT's own teacher): label_emb has num_classes + 1 rows, the last is null.
    let mut weights = boot_sdk::io::load_safetensors(&adm_fixtures().join("adm_unet_c10.safetensors"), &Device::Cpu).unwrap();
    let null_row = boot_sdk::rng::normal(&[99], &[128], &Device::Cpu).unwrap().reshape((1, 128)).unwrap();
    let table = Tensor::cat(&[&weights["label_emb.weight"], &null_row], 0).unwrap();
    weights.insert("label_emb.weight".into(), table);
    let dir = std::env::temp_dir().join(format!("boot-imagenet-null-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x0_extra_row.safetensors");
    boot_sdk::io::save_safetensors(&path, &weights, None).unwrap();
    let t_x0 = teacher(json!({ "checkpoint": path, "prediction": "x0", "null_class": "extra-row" }));
    assert_eq!(t_x0.cond_spec().num_classes, Some(10), "the null row is not a class");
    let den = adm(t_x0.as_ref()).denoiser();
    let mixed = Cond::classes(vec![Some(4), None]);
    assert_eq!(den.label_ids(&mixed, 2).unwrap(), Some(vec![Some(4), Some(10)]));
    let y = t_x0.denoise(&x, &tt, &mixed).unwrap();
    let steps = den.discrete().timesteps_of_lambda(&tt.lambda);
    let t_in = dev_cond(&Tensor::new(steps.iter().map(|&v| v as f32).collect::<Vec<_>>(), &Device::Cpu).unwrap());
    let direct = den.unet().forward(&x, &t_in, Some(&[Some(4), Some(10)]), None).unwrap().narrow(1, 0, 3).unwrap();
    assert_eq!(max_abs(&y, &direct), 0.0, "x0 prediction: the first channels, unconverted");
    let line = input_error(&t_x0.denoise(&x, &tt, &Cond::classes(vec![Some(10), None])).unwrap_err());
    assert!(line.contains("label 10 out of range"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unconditional_model() {
    // A class-conditional checkpoint without its label table is an unconditional model.
    let mut weights = boot_sdk::io::load_safetensors(&adm_fixtures().join("adm_unet_c10.safetensors"), &Device::Cpu).unwrap();
    weights.remove("label_emb.weight");
    let dir = std::env::temp_dir().join(format!("boot-imagenet-uncond-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("uncond.safetensors");
    boot_sdk::io::save_safetensors(&path, &weights, None).unwrap();
    let t = teacher(json!({ "checkpoint": path, "class_cond": false }));
    assert_eq!(t.cond_spec().num_classes, None);
    assert!(t.sample_cond(&[1, 2]).unwrap().class.is_none());
    if !skip_without_conv("unconditional_model") {
        let tt = times(&BetaSchedule::cosine(1000).unwrap(), &[0.5]);
        let x = dev(&noise(0, 1));
        let y = t.denoise(&x, &tt, &Cond::none()).unwrap();
        assert_eq!(y.dims(), &[1, 3, 16, 16]);
        assert_eq!(max_abs(&y, &t.denoise(&x, &tt, &t.null_cond(&Cond::none()).unwrap()).unwrap()), 0.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
