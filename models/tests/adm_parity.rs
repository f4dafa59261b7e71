//! Parity of `boot_models::adm` (guided-diffusion's UNet) with the official outputs in
//! `models/tests/fixtures/adm` (see its README): `||out - ref_f32|| / ||ref_f32|| <= 1e-4` in f32, and the f64 port
//! against the float64 ground truth. Run with `--nocapture` to see the numbers. The f32 runs go to
//! `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`); the f64 runs stay on the CPU.

mod common;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::adm::{AttentionBlock, ResBlock, ResBlockConfig, UNetModel, UNetModelConfig};
use boot_sdk::BetaSchedule;
use boot_models::embeddings::timesteps::Timesteps;
use boot_sdk::serde_json;
use common::*;

const FAMILY: &str = "adm";

fn resblock(name: &str, dtype: DType, device: &Device) -> ResBlock {
    let kw = &config(FAMILY, name)["constructor_kwargs"];
    let cfg = ResBlockConfig {
        channels: kw["channels"].as_u64().unwrap() as usize,
        emb_channels: kw["emb_channels"].as_u64().unwrap() as usize,
        out_channels: kw["out_channels"].as_u64().unwrap() as usize,
        use_scale_shift_norm: kw["use_scale_shift_norm"].as_bool().unwrap(),
        up: kw["up"].as_bool().unwrap(),
        down: kw["down"].as_bool().unwrap(),
    };
    load_on(FAMILY, name, dtype, device, |vb| ResBlock::new(vb, cfg))
}

#[test]
fn resblocks() {
    for name in ["adm_resblock_down", "adm_resblock_up_skip"] {
        let m = io(FAMILY, name);
        let y64 = resblock(name, DType::F64, &Device::Cpu).forward(&cast(t(&m, "x"), DType::F64), &cast(t(&m, "emb"), DType::F64)).unwrap();
        check_f64(name, &y64, t(&m, "y_f64"), 1e-10);
        if skip_without_conv(name) {
            continue;
        }
        let y = resblock(name, test_dtype(), &test_device()).forward(&dev(t(&m, "x")), &dev_cond(t(&m, "emb"))).unwrap();
        check(name, &y, t(&m, "y_f32"), t(&m, "y_f64"));
    }
}

#[test]
fn attention_both_orders() {
    for (name, new_order) in [("adm_attention_new_order", true), ("adm_attention_legacy_order", false)] {
        let kw = config(FAMILY, name)["constructor_kwargs"].clone();
        assert_eq!(kw["use_new_attention_order"].as_bool().unwrap(), new_order);
        let heads = boot_models::adm::attention_heads(32, 1, Some(8)).unwrap();
        assert_eq!(heads, 4);
        let m = io(FAMILY, name);
        let x = dev(t(&m, "x"));
        let y = load(FAMILY, name, |vb| AttentionBlock::new(vb, 32, heads, new_order)).forward(&x).unwrap();
        check(name, &y, t(&m, "y_f32"), t(&m, "y_f64"));
        let y64 = load_f64(FAMILY, name, |vb| AttentionBlock::new(vb, 32, heads, new_order)).forward(&cast(t(&m, "x"), DType::F64)).unwrap();
        check_f64(name, &y64, t(&m, "y_f64"), 1e-10);
        // The wrong layout is far off: the fixture distinguishes the two orders.
        let wrong = load(FAMILY, name, |vb| AttentionBlock::new(vb, 32, heads, !new_order)).forward(&x).unwrap();
        assert!(diff(&wrong, t(&m, "y_f32")).0 > 1e-2);
    }
}

fn unet_config() -> UNetModelConfig {
    serde_json::from_value(config(FAMILY, "adm_unet_c10")["constructor_kwargs"].clone()).expect("UNetModel kwargs")
}

#[test]
fn unet_c10_end_to_end() {
    let name = "adm_unet_c10";
    let cfg = unet_config();
    let m = io(FAMILY, name);
    let (x, ts, y) = (&dev(t(&m, "x")), &dev_cond(t(&m, "timesteps")), labels(t(&m, "y")));
    let net = load(FAMILY, name, |vb| UNetModel::new(vb, &cfg));
    let order = trace_modules(&config(FAMILY, name));
    assert_eq!(net.module_order(), order);

    let sinusoid = net.timestep_embedding(ts).unwrap();
    check_net(&format!("{name} t_sinusoid"), &sinusoid, t(&m, "t_sinusoid_f32"), t(&m, "t_sinusoid_f64"));
    let emb = net.embedding(ts, Some(&y), None).unwrap();
    check_net(&format!("{name} emb"), &emb, t(&m, "emb_f32"), t(&m, "emb_f64"));
    if skip_without_conv(name) {
        return;
    }
    let mut traced = Vec::new();
    let out = net
        .forward_with_embedding(x, &emb, &mut |n, h| {
            traced.push((n.to_string(), h.clone()));
            Ok(())
        })
        .unwrap();
    check_net(&format!("{name} out"), &out, t(&m, "out_f32"), t(&m, "out_f64"));
    check_trace(name, &order, &traced, t(&m, "trace_stats_f32"), 1e-4);
    let full = net.forward(x, ts, Some(&y), None).unwrap();
    assert_eq!(diff(&full, &out).1, 0.0);
}

/// The f64 port of `adm_unet_c10` against the float64 ground truth (on the CPU).
#[test]
fn unet_c10_f64() {
    let name = "adm_unet_c10";
    let cfg = unet_config();
    let m = io(FAMILY, name);
    let (x, ts, y) = (t(&m, "x"), t(&m, "timesteps"), labels(t(&m, "y")));
    let net64 = load_f64(FAMILY, name, |vb| UNetModel::new(vb, &cfg));
    let out64 = net64.forward(&cast(x, DType::F64), &cast(ts, DType::F64), Some(&y), None).unwrap();
    check_f64(&format!("{name} out"), &out64, t(&m, "out_f64"), 1e-9);
    let sin64 = Timesteps::adm(32).forward(&cast(ts, DType::F64)).unwrap();
    check_f64(&format!("{name} t_sinusoid"), &sin64, t(&m, "t_sinusoid_f64"), 1e-12);
}

#[test]
fn unet_label_errors() {
    let cfg = unet_config();
    let net = load(FAMILY, "adm_unet_c10", |vb| UNetModel::new(vb, &cfg));
    let ts = dev_cond(&Tensor::new(&[10f32, 20.0], &Device::Cpu).unwrap());
    assert!(net.embedding(&ts, None, None).is_err(), "a class-conditional net needs labels");
    assert!(net.embedding(&ts, Some(&[Some(1)]), None).is_err(), "one label per sample");
    assert!(net.embedding(&ts, Some(&[Some(1), Some(10)]), None).is_err(), "labels in range");
    // A `None` label adds nothing: the embedding is the time MLP's output alone.
    let with_none = net.embedding(&ts, Some(&[None, None]), None).unwrap();
    let sinusoid = net.timestep_embedding(&ts).unwrap();
    assert_eq!(with_none.dims(), &[2, 128]);
    assert_eq!(sinusoid.dims(), &[2, 32]);
}

#[test]
fn cosine_schedule_matches_guided_diffusion() {
    let m = io(FAMILY, "adm_unet_c10");
    let s = BetaSchedule::cosine(1000).unwrap();
    let betas: Vec<f64> = t(&m, "betas").to_vec1().unwrap();
    let acp: Vec<f64> = t(&m, "alphas_cumprod").to_vec1().unwrap();
    let db = s.betas().iter().zip(&betas).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let da = s.alphas_cumprod().iter().zip(&acp).map(|(a, b)| ((a - b) / b).abs()).fold(0.0, f64::max);
    println!("cosine schedule: max |beta - ref| = {db:.3e}, max rel |alpha_bar - ref| = {da:.3e}");
    assert!(db <= 1e-15 && da <= 1e-12);
    assert_eq!(s.betas()[999], 0.999);
    // Integer timesteps map to themselves through lambda, fractional ones interpolate.
    for i in [0usize, 1, 41, 500, 998, 999] {
        let (alpha, sigma) = s.alpha_sigma_at(i as f64);
        assert!((alpha * alpha - acp[i]).abs() <= 1e-12 * acp[i].max(1e-3), "alpha^2 at {i}");
        assert!((alpha * alpha + sigma * sigma - 1.0).abs() < 1e-12);
        assert!((s.timestep_of_lambda(s.lambdas()[i]) - i as f64).abs() < 1e-9);
    }
    assert!((s.timestep_of_lambda(s.lambda_at(41.25)) - 41.25).abs() < 1e-9);
    assert_eq!(s.timestep_of_lambda(-100.0), 0.0);
    assert_eq!(s.timestep_of_lambda(100.0), 999.0);
    use boot_sdk::NoiseSchedule;
    for t in [0.0, 0.3, 0.75, 0.99, 1.0] {
        let ts = s.timestep_of_lambda(s.lambda(t));
        assert!((ts - t * 999.0).abs() < 1e-8, "t = {t}: timestep {ts}");
        assert!((s.t_of_lambda(s.lambda(t)) - t).abs() < 1e-11);
    }
}

#[test]
fn linear_schedules() {
    // guided-diffusion's linear schedule: DDPM's 1e-4 .. 0.02, scaled by 1000 / N.
    let s = BetaSchedule::guided_diffusion_linear(1000).unwrap();
    assert_eq!((s.betas()[0], s.betas()[999]), (1e-4, 0.02));
    let s4 = BetaSchedule::guided_diffusion_linear(4000).unwrap();
    assert!((s4.betas()[0] - 2.5e-5).abs() < 1e-18 && (s4.betas()[3999] - 0.005).abs() < 1e-15);
    // Stable Diffusion's scaled-linear: linear in sqrt(beta).
    let sd = BetaSchedule::scaled_linear(1000, 0.00085, 0.012).unwrap();
    assert!((sd.betas()[0] - 0.00085).abs() < 1e-15 && (sd.betas()[999] - 0.012).abs() < 1e-15);
    let mid = (0.00085f64.sqrt() + (0.012f64.sqrt() - 0.00085f64.sqrt()) * 500.0 / 999.0).powi(2);
    assert!((sd.betas()[500] - mid).abs() < 1e-15);
    for sch in [&s, &s4, &sd] {
        assert!(sch.lambdas().windows(2).all(|w| w[0] < w[1]), "lambda increases with the timestep");
    }
    assert!(BetaSchedule::from_betas(vec![0.1]).is_err());
    assert!(BetaSchedule::from_betas(vec![0.1, 1.0]).is_err());
}
