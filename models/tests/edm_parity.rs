//! Parity of the EDM port with NVIDIA's reference outputs (fixtures made with NVlabs/edm
//! `training/networks.py` and `generate.py`; see `fixtures/edm/README.md`).
//!
//! Every test computes in f32 and asserts `||out - ref|| / ||ref|| <= 1e-4` against the official float32
//! output (`*_f32`), and prints the max-abs difference to the float64 ground truth (`*_f64`); run with
//! `--nocapture` to see the numbers. Networks are also run in f64 and compared with `*_f64` tightly.
//!
//! The f32 runs go to `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`, with the `bf16`
//! tolerances); the f64 runs and the float32 arithmetic of the VP wrapper's `c_noise` stay on the CPU.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use boot_models::edm::NetworkSpec;
use boot_models::edm::DhariwalUNet;
use boot_models::edm::SongUNet;
use boot_models::edm::{edm_sampler, edm_time_steps, ArchConfig, EdmDenoiser, HeunConfig};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::edm::{UNetBlock, UNetBlockConfig};
use boot_models::load_strict;
use boot_sdk::serde_json::{self, Value};
use common::*;

const TOL: f64 = 1e-4;

/// bf16: the Heun sampler's states and denoised images against the official float32 run. The last step
/// divides `x - D(x)` by sigma = 0.002 and multiplies by the step (0.17): it amplifies the denoiser's bf16
/// error, measured on an H200 up to 5.4e-2 (call 8; calls 0-7 up to 1.6e-2).
const BF16_SAMPLER: f64 = 1e-1;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("edm").join(name)
}

fn io(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixture(&format!("{name}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

fn weights(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixture(&format!("{name}.safetensors")), &Device::Cpu).expect("weights fixture")
}

fn config(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.config.json"))).expect("config")).expect("json")
}

fn spec(name: &str) -> NetworkSpec {
    NetworkSpec::from_json_file(&fixture(&format!("{name}.config.json"))).expect("spec")
}

fn t<'a>(m: &'a HashMap<String, Tensor>, k: &str) -> &'a Tensor {
    m.get(k).unwrap_or_else(|| panic!("io tensor {k}"))
}

fn f64v(x: &Tensor) -> Vec<f64> {
    host_vec(x)
}

/// `(relative L2 error, max abs difference)`.
fn diff(out: &Tensor, reference: &Tensor) -> (f64, f64) {
    let (a, b) = (f64v(out), f64v(reference));
    assert_eq!(a.len(), b.len(), "shape mismatch {:?} vs {:?}", out.dims(), reference.dims());
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    (num / den, max)
}

/// Asserts parity of a network's output with the f32 reference (`TOL`; `BF16_REL_UNET` in bf16) and reports
/// the distance to the f64 ground truth.
fn check(label: &str, out: &Tensor, ref_f32: &Tensor, ref_f64: Option<&Tensor>) {
    check_tol(label, out, ref_f32, ref_f64, tol(TOL, BF16_REL_UNET));
}

fn check_tol(label: &str, out: &Tensor, ref_f32: &Tensor, ref_f64: Option<&Tensor>, tol: f64) {
    let (rel, max32) = diff(out, ref_f32);
    let vs64 = ref_f64.map(|r| diff(out, r).1);
    println!(
        "PARITY {label} [{:?} {:?}]: rel_err_vs_f32 = {rel:.3e}, max_abs_vs_f32 = {max32:.3e}, max_abs_vs_f64 = {}",
        test_device().location(),
        test_dtype(),
        vs64.map(|v| format!("{v:.3e}")).unwrap_or("-".into())
    );
    assert!(rel <= tol, "{label}: relative error {rel:.3e} > {tol:e} ({:?})", test_dtype());
}

fn stats(x: &Tensor) -> [f64; 4] {
    let v = f64v(x);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let mean_abs = v.iter().map(|a| a.abs()).sum::<f64>() / n;
    let std = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let max = v.iter().map(|a| a.abs()).fold(0.0, f64::max);
    [mean, mean_abs, std, max]
}

/// Compares the per-module trace statistics (mean, mean|.|, std, max|.|) with the fixture's: within 1e-4 of
/// the module's mean |.|, or in bf16 within `BF16_TRACE` of the larger of the module's mean |.| and the
/// statistic itself (the max |.| of bf16 values is rounded to 8 bits).
fn check_trace(name: &str, order: &[String], traced: &[(String, Tensor)], reference: &Tensor) {
    let r: Vec<Vec<f64>> = reference.to_vec2().unwrap();
    assert_eq!(traced.len(), order.len(), "{name}: number of traced modules");
    let mut worst = 0f64;
    for (i, (m, out)) in traced.iter().enumerate() {
        assert_eq!(m, &order[i], "{name}: module order");
        let s = stats(out);
        for j in 0..4 {
            let scale = if is_bf16() { r[i][1].abs().max(r[i][j].abs()) } else { r[i][1].abs() };
            let tol = tol(1e-4, BF16_TRACE) * scale + 1e-6;
            worst = worst.max((s[j] - r[i][j]).abs() / scale);
            assert!((s[j] - r[i][j]).abs() <= tol, "{name}: trace {m} stat {j}: {} vs {}", s[j], r[i][j]);
        }
    }
    println!("PARITY {name} trace [{:?}]: worst stat error / scale = {worst:.3e}", test_dtype());
}

fn module_order(name: &str) -> Vec<String> {
    config(name)["module_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn song_net(name: &str, dtype: DType, device: &Device) -> SongUNet {
    let ArchConfig::Song(cfg) = spec(name).arch else { panic!("not a SongUNet") };
    load_strict(name, weights(name), dtype, device, |vb| Ok(SongUNet::new(vb, &cfg)?)).expect("load")
}

fn dhariwal_net(name: &str, dtype: DType, device: &Device) -> DhariwalUNet {
    let ArchConfig::Dhariwal(cfg) = spec(name).arch else { panic!("not a DhariwalUNet") };
    load_strict(name, weights(name), dtype, device, |vb| Ok(DhariwalUNet::new(vb, &cfg)?)).expect("load")
}

fn song_parity(name: &str) {
    let m = io(name);
    // The same network in f64 is the ground truth.
    let net64 = song_net(name, DType::F64, &Device::Cpu);
    let f64out = net64.forward(&t(&m, "x").to_dtype(DType::F64).unwrap(), &t(&m, "noise_labels").to_dtype(DType::F64).unwrap(), None, None).unwrap();
    let (rel, max) = diff(&f64out, t(&m, "F_f64"));
    println!("PARITY {name} F (computed in f64): rel_err_vs_f64 = {rel:.3e}, max_abs_vs_f64 = {max:.3e}");
    assert!(rel <= 1e-9, "{name}: f64 run differs from F_f64 by {rel:.3e}");

    let (x, nl) = (&dev(t(&m, "x")), &dev_cond(t(&m, "noise_labels")));
    let net = song_net(name, test_dtype(), &test_device());
    assert_eq!(net.module_order(), module_order(name));
    let emb = net.embedding(nl, None, None, None).unwrap();
    if is_bf16() && config(name)["constructor_kwargs"]["embedding_type"] == "fourier" {
        eprintln!(
            "NOTE {name}: a bf16 network stores FourierEmbedding.freqs in bf16; with |freqs| up to ~50 the angles \
             2 pi c_noise freqs (hundreds of radians) are off by radians and the embedding is wrong (rel. error \
             0.1): expected to fail until the frequencies stay f32 (boot_models::embedding_dtype)"
        );
    }
    check(&format!("{name} emb"), &emb, t(&m, "emb_f32"), Some(t(&m, "emb_f64")));
    if skip_without_conv(name) {
        return;
    }
    let n_enc = enc_len(name);
    let mut traced = Vec::new();
    let f = net
        .forward_with_embedding(x, &emb, &mut |n, y| {
            let side = if traced.len() < n_enc { "enc" } else { "dec" };
            traced.push((format!("{side}.{n}"), y.clone()));
            Ok(())
        })
        .unwrap();
    check_trace(name, &module_order(name), &traced, t(&m, "trace_stats_f32"));
    check(&format!("{name} F"), &f, t(&m, "F_f32"), Some(t(&m, "F_f64")));
}

fn enc_len(name: &str) -> usize {
    module_order(name).iter().filter(|n| n.starts_with("enc.")).count()
}

#[test]
fn songunet_ddpmpp() {
    song_parity("songunet_ddpmpp");
}

#[test]
fn songunet_ncsnpp() {
    song_parity("songunet_ncsnpp");
}

#[test]
fn dhariwalunet_adm() {
    let name = "dhariwalunet_adm";
    let m = io(name);
    let (x, nl, labels) = (t(&m, "x"), t(&m, "noise_labels"), t(&m, "class_labels"));
    let row2: Vec<f64> = f64v(&labels.get(2).unwrap());
    assert!(row2.iter().all(|&v| v == 0.0), "fixture row 2 is the all-zero (unconditional) label");
    let net64 = dhariwal_net(name, DType::F64, &Device::Cpu);
    let f64out = net64
        .forward(&x.to_dtype(DType::F64).unwrap(), &nl.to_dtype(DType::F64).unwrap(), Some(&labels.to_dtype(DType::F64).unwrap()), None)
        .unwrap();
    let (rel, max) = diff(&f64out, t(&m, "F_f64"));
    println!("PARITY {name} F (computed in f64): rel_err_vs_f64 = {rel:.3e}, max_abs_vs_f64 = {max:.3e}");
    assert!(rel <= 1e-9, "{name}: f64 run differs from F_f64 by {rel:.3e}");

    let (x, nl, labels) = (&dev(x), &dev_cond(nl), &dev_cond(labels));
    let net = dhariwal_net(name, test_dtype(), &test_device());
    assert_eq!(net.module_order(), module_order(name));
    let emb = net.embedding(nl, Some(labels), None, None).unwrap();
    check(&format!("{name} emb"), &emb, t(&m, "emb_f32"), Some(t(&m, "emb_f64")));
    if skip_without_conv(name) {
        return;
    }
    let n_enc = enc_len(name);
    let mut traced = Vec::new();
    let f = net
        .forward_with_embedding(x, &emb, &mut |n, y| {
            let side = if traced.len() < n_enc { "enc" } else { "dec" };
            traced.push((format!("{side}.{n}"), y.clone()));
            Ok(())
        })
        .unwrap();
    check_trace(name, &module_order(name), &traced, t(&m, "trace_stats_f32"));
    check(&format!("{name} F"), &f, t(&m, "F_f32"), Some(t(&m, "F_f64")));
}

/// Wrapper fixtures: coefficients, the inner net on the official inputs, and the whole `D`.
fn precond_parity(name: &str, labels: bool) -> (EdmDenoiser, HashMap<String, Tensor>) {
    let m = io(name);
    let s = spec(name);
    let (den, _) = EdmDenoiser::load(&fixture(&format!("{name}.safetensors")), &s, None, test_dtype(), &test_device()).expect("load");
    let x = &dev(t(&m, "x"));
    let sigma = f64v(t(&m, "sigma"));
    let class = labels.then(|| dev_cond(t(&m, "class_labels")));

    // The coefficients are computed in f32 also for a bf16 body (`EdmDenoiser::forward`).
    let c = den.coefficient_tensors(&sigma, cond_dtype(), &test_device()).unwrap();
    for (k, v) in [("c_skip", &c.c_skip), ("c_out", &c.c_out), ("c_in", &c.c_in), ("noise_labels", &c.c_noise)] {
        let (rel, max) = diff(v, t(&m, &format!("{k}_f32")));
        let (_, max64) = diff(v, t(&m, &format!("{k}_f64")));
        println!("PARITY {name} {k}: rel_err_vs_f32 = {rel:.3e}, max_abs_vs_f32 = {max:.3e}, max_abs_vs_f64 = {max64:.3e}");
        assert!(rel <= 1e-6, "{name} {k}: {rel:.3e}");
    }
    if skip_without_conv(name) {
        return (den, m);
    }
    // The inner net on exactly the official inputs.
    let f = den.network().forward(&dev(t(&m, "x_in_f32")), &dev_cond(t(&m, "noise_labels_f32")), class.as_ref(), None).unwrap();
    check(&format!("{name} F(x_in_f32)"), &f, t(&m, "F_f32"), Some(t(&m, "F_f64")));
    // The whole wrapper.
    let d = den.forward(x, &sigma, class.as_ref(), None).unwrap();
    check(&format!("{name} D"), &d, t(&m, "D_f32"), Some(t(&m, "D_f64")));
    (den, m)
}

#[test]
fn edmprecond_songunet_ddpmpp() {
    let (den, _) = precond_parity("edmprecond_songunet_ddpmpp", false);
    assert_eq!((den.sigma_min(), den.sigma_max()), (0.0, f64::INFINITY));
}

#[test]
fn vpprecond_songunet_ddpmpp() {
    let name = "vpprecond_songunet_ddpmpp";
    let (den, m) = precond_parity(name, false);
    // Quirk 8: the official float32 c_noise is reproduced, not the exact one.
    let ours = f64v(&den.coefficient_tensors(&[0.002], DType::F32, &Device::Cpu).unwrap().c_noise)[0];
    let official = f64v(t(&m, "noise_labels_f32"))[0];
    let exact = f64v(t(&m, "noise_labels_f64"))[0];
    println!("PARITY {name} c_noise(0.002): ours {ours:.7}, official f32 {official:.7}, exact {exact:.7}");
    assert!((ours - official).abs() < 1e-6 && (ours - exact).abs() > 1e-4);
    // The stored limits, evaluated in float32 like the official constructor.
    assert_eq!(den.sigma_min(), 0.0009765625);
    assert_eq!(den.sigma_max(), 152.16697692871094);
}

#[test]
fn edmprecond_dhariwalunet_adm() {
    let name = "edmprecond_dhariwalunet_adm";
    let (den, m) = precond_parity(name, true);
    if skip_without_conv(name) {
        return;
    }
    // class_labels None: the wrapper feeds an all-zero row.
    let (x, sigma) = (dev(t(&m, "x")), f64v(t(&m, "sigma")));
    let d = den.forward(&x, &sigma, None, None).unwrap();
    check(&format!("{name} D(class_labels=None)"), &d, t(&m, "D_f32_class_labels_none"), None);
    // On the CPU in f32 row 2 also matches the official output to 1e-6 (the CPU's order of summation: CUDA's
    // differs by 1.2e-6 max abs, within the relative 1e-4 checked above).
    if test_device().is_cpu() && !is_bf16() {
        let (_, row2) = diff(&d.get(2).unwrap(), &t(&m, "D_f32").get(2).unwrap());
        assert!(row2 <= 1e-6, "row 2 (all-zero label) must equal the unconditional output");
    }
    // ... as our own output for the fixture's labels, whose row 2 is all-zero (in any dtype).
    let labelled = den.forward(&x, &sigma, Some(&dev_cond(t(&m, "class_labels"))), None).unwrap();
    let (_, row2) = diff(&d.get(2).unwrap(), &labelled.get(2).unwrap());
    assert!(row2 <= 1e-6, "row 2 (all-zero label) must equal the unconditional output: {row2:e}");
}

fn block_parity(name: &str) {
    let c = config(name);
    let k = &c["constructor_kwargs"];
    let u = |key: &str| k[key].as_u64().unwrap() as usize;
    let b = |key: &str| k[key].as_bool().unwrap();
    let cfg = UNetBlockConfig {
        in_channels: u("in_channels"),
        out_channels: u("out_channels"),
        emb_channels: u("emb_channels"),
        up: b("up"),
        down: b("down"),
        attention: b("attention"),
        num_heads: k["num_heads"].as_u64().map(|v| v as usize),
        channels_per_head: u("channels_per_head"),
        skip_scale: k["skip_scale"].as_f64().unwrap(),
        eps: k["eps"].as_f64().unwrap(),
        resample_filter: k["resample_filter"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
        resample_proj: b("resample_proj"),
        adaptive_scale: b("adaptive_scale"),
    };
    assert_eq!(cfg.heads() as u64, c["derived_attributes"]["num_heads"].as_u64().unwrap());
    let m = io(name);
    let block = load_strict(name, weights(name), DType::F64, &Device::Cpu, |vb| Ok(UNetBlock::new(vb, cfg.clone())?)).expect("load");
    let y = block.forward(&t(&m, "x").to_dtype(DType::F64).unwrap(), &t(&m, "emb").to_dtype(DType::F64).unwrap()).unwrap();
    let (rel, max) = diff(&y, t(&m, "y_f64"));
    println!("PARITY {name} y (computed in f64): rel_err_vs_f64 = {rel:.3e}, max_abs_vs_f64 = {max:.3e}");
    assert!(rel <= 1e-9);
    if skip_without_conv(name) {
        return;
    }
    let block = load_strict(name, weights(name), test_dtype(), &test_device(), |vb| Ok(UNetBlock::new(vb, cfg.clone())?)).expect("load");
    let y = block.forward(&dev(t(&m, "x")), &dev_cond(t(&m, "emb"))).unwrap();
    check_tol(&format!("{name} y"), &y, t(&m, "y_f32"), Some(t(&m, "y_f64")), tol(TOL, BF16_REL_BLOCK));
}

#[test]
fn unetblock_adm_attn2h() {
    block_parity("unetblock_adm_attn2h");
}

#[test]
fn unetblock_song_down_attn2h() {
    block_parity("unetblock_song_down_attn2h");
}

#[test]
fn edm_sampler_heun5() {
    let name = "edm_sampler_heun5";
    let c = config(name);
    let m = io(name);
    let net_name = c["network_fixture"].as_str().unwrap();
    let (den, _) = EdmDenoiser::load(&fixture(&format!("{net_name}.safetensors")), &spec(net_name), None, test_dtype(), &test_device()).expect("load");
    let cfg = HeunConfig { num_steps: 5, ..HeunConfig::default() };
    let steps = edm_time_steps(&cfg, den.sigma_min(), den.sigma_max());
    let (_, max_t) = diff(&Tensor::new(steps.as_slice(), &Device::Cpu).unwrap(), t(&m, "t_steps"));
    assert!(max_t <= 1e-12, "t_steps differ by {max_t:e}");
    if skip_without_conv(name) {
        return;
    }

    let mut calls: Vec<(Tensor, f64, Tensor)> = Vec::new();
    let mut denoise = |x: &Tensor, sigma: f64| {
        let d = den.forward(&x.to_dtype(test_dtype())?, &[sigma], None, None)?;
        calls.push((x.clone(), sigma, d.clone()));
        Ok(d)
    };
    let mut no_noise = |_: &Tensor| -> boot_sdk::candle::Result<Tensor> { panic!("S_churn = 0 draws no noise") };
    let latents = t(&m, "latents").to_device(&test_device()).unwrap();
    let out = edm_sampler(&mut denoise, &latents, &cfg, den.sigma_min(), den.sigma_max(), &mut no_noise).unwrap();
    assert_eq!(calls.len(), 9);
    let sig_ref = f64v(t(&m, "official_net_sigma"));
    for (i, (x, s, d)) in calls.iter().enumerate() {
        assert!((s - sig_ref[i]).abs() <= 1e-12 * sig_ref[i], "call {i}: sigma {s} vs {}", sig_ref[i]);
        let (rx, _) = diff(x, &t(&m, "official_net_x").get(i).unwrap());
        let (rd, _) = diff(d, &t(&m, "official_denoised_f32").get(i).unwrap());
        println!("PARITY {name} call {i} (sigma {s:.6}): rel_err x = {rx:.3e}, denoised = {rd:.3e}");
        let tol = tol(TOL, BF16_SAMPLER);
        assert!(rx <= tol && rd <= tol, "call {i}: x {rx:e}, denoised {rd:e}");
    }
    check_tol(&format!("{name} out"), &out, t(&m, "official_out"), Some(t(&m, "f64_out")), tol(TOL, BF16_SAMPLER));
}
