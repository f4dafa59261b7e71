//! `boot_models` layers the EDM fixtures do not reach: the other qkv layouts, cross-attention with key
//! masks, the fast box-filter resampling paths, labels, group norm, and the frozen-buffer overlay.
//!
//! The checks against a definition in f64 (qkv layouts, attention, cross-attention masks, group norm) stay on
//! the CPU in f64; the box filter, labels and the overlay run on `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE`
//! (`common/device.rs`).

mod common;

use std::collections::HashMap;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_models::layers::attention::{split_qkv, QkvLayout};
use boot_models::{one_hot_labels, scaled_dot_product_attention, ClassEmbeddingTable, CrossAttention, FrozenOverlay, GroupNorm, Linear, ResampleFilter};
use boot_sdk::InputError;
use common::{host_vec, skip_without_conv, test_device, test_dtype};

/// The device of the f64 checks against a definition.
fn dev() -> Device {
    Device::Cpu
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    boot_sdk::rng::normal(&[seed], shape, &dev()).unwrap().squeeze(0).unwrap().to_dtype(DType::F64).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    host_vec(&(a - b).unwrap()).into_iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn qkv_layouts_agree() {
    let (b, heads, ch, l) = (2, 3, 4, 5);
    let c = heads * ch;
    let inter = randn(&[b, 3 * c, l], 1);
    // Channel of (head, c, j) in each layout.
    let idx = |layout: QkvLayout, h: usize, k: usize, j: usize| match layout {
        QkvLayout::Interleaved => (h * ch + k) * 3 + j,
        QkvLayout::HeadsThenQkv => h * 3 * ch + j * ch + k,
        QkvLayout::QkvThenHeads => j * c + h * ch + k,
    };
    let (q0, k0, v0) = split_qkv(&inter, heads, QkvLayout::Interleaved).unwrap();
    for layout in [QkvLayout::HeadsThenQkv, QkvLayout::QkvThenHeads] {
        let mut perm = vec![0u32; 3 * c];
        for h in 0..heads {
            for k in 0..ch {
                for j in 0..3 {
                    perm[idx(layout, h, k, j)] = idx(QkvLayout::Interleaved, h, k, j) as u32;
                }
            }
        }
        let other = inter.index_select(&Tensor::new(perm.as_slice(), &dev()).unwrap(), 1).unwrap();
        let (q, k, v) = split_qkv(&other, heads, layout).unwrap();
        assert_eq!(max_abs(&q, &q0) + max_abs(&k, &k0) + max_abs(&v, &v0), 0.0, "{layout:?}");
    }
}

#[test]
fn attention_matches_definition_and_masks() {
    let (n, lq, lk, d) = (2, 3, 4, 5);
    let (q, k, v) = (randn(&[n, lq, d], 2), randn(&[n, lk, d], 3), randn(&[n, lk, d], 4));
    let out = scaled_dot_product_attention(&q, &k, &v, None).unwrap();
    type V3 = Vec<Vec<Vec<f64>>>;
    let (qv, kv, vv, ov): (V3, V3, V3, V3) = (q.to_vec3().unwrap(), k.to_vec3().unwrap(), v.to_vec3().unwrap(), out.to_vec3().unwrap());
    for i in 0..n {
        for a in 0..lq {
            let logits: Vec<f64> = (0..lk).map(|b| (0..d).map(|e| qv[i][a][e] * kv[i][b][e]).sum::<f64>() / (d as f64).sqrt()).collect();
            let m = logits.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = logits.iter().map(|x| (x - m).exp()).sum();
            for e in 0..d {
                let want: f64 = (0..lk).map(|b| (logits[b] - m).exp() / z * vv[i][b][e]).sum();
                assert!((ov[i][a][e] - want).abs() < 1e-12);
            }
        }
    }
    // Masking the last key equals attending to the first lk - 1 keys.
    let mut bias = vec![0f64; lk];
    bias[lk - 1] = -1e9;
    let bias = Tensor::new(bias.as_slice(), &dev()).unwrap().reshape((1, 1, lk)).unwrap();
    let masked = scaled_dot_product_attention(&q, &k, &v, Some(&bias)).unwrap();
    let short = scaled_dot_product_attention(&q, &k.narrow(1, 0, lk - 1).unwrap(), &v.narrow(1, 0, lk - 1).unwrap(), None).unwrap();
    assert!(max_abs(&masked, &short) < 1e-12);
}

#[test]
fn cross_attention_ignores_masked_context() {
    let (qd, cd, heads, hd) = (6, 4, 2, 3);
    let mut w = HashMap::new();
    w.insert("to_q.weight".to_string(), randn(&[heads * hd, qd], 5));
    w.insert("to_k.weight".to_string(), randn(&[heads * hd, cd], 6));
    w.insert("to_v.weight".to_string(), randn(&[heads * hd, cd], 7));
    w.insert("to_out.0.weight".to_string(), randn(&[qd, heads * hd], 8));
    w.insert("to_out.0.bias".to_string(), randn(&[qd], 9));
    let attn = boot_models::load_strict("attn", w, DType::F64, &dev(), |vb| Ok(CrossAttention::new(vb, qd, cd, heads, hd)?)).unwrap();
    let x = randn(&[2, 5, qd], 10);
    let ctx = randn(&[2, 7, cd], 11);
    let mask = Tensor::new(&[[1f64, 1., 1., 1., 1., 0., 0.], [1., 1., 1., 1., 1., 0., 0.]], &dev()).unwrap();
    let masked = attn.forward(&x, Some(&ctx), Some(&mask)).unwrap();
    let short = attn.forward(&x, Some(&ctx.narrow(1, 0, 5).unwrap()), None).unwrap();
    assert_eq!(masked.dims(), &[2, 5, qd]);
    assert!(max_abs(&masked, &short) < 1e-9);
}

#[test]
fn box_filter_fast_paths_equal_the_convolutions() {
    if skip_without_conv("box_filter_fast_paths_equal_the_convolutions") {
        return;
    }
    let (dtype, device) = (test_dtype(), test_device());
    let x = randn(&[2, 3, 8, 6], 12).to_device(&device).unwrap().to_dtype(dtype).unwrap();
    let f = ResampleFilter::from_taps(&[1.0, 1.0], dtype, &device).unwrap();
    let flat = x.reshape((6, 1, 8, 6)).unwrap();
    let up_conv = flat.conv_transpose2d(&(f.tensor() * 4.0).unwrap(), 0, 0, 2, 1).unwrap().reshape((2, 3, 16, 12)).unwrap();
    assert_eq!(max_abs(&f.upsample(&x, 0).unwrap(), &up_conv), 0.0);
    let down_conv = flat.conv2d(f.tensor(), 0, 2, 1, 1).unwrap().reshape((2, 3, 4, 3)).unwrap();
    // Also in bf16 (0 on an H200): both sum the 4 products in f32 and round once.
    let down = max_abs(&f.downsample(&x, 0).unwrap(), &down_conv);
    println!("box filter 2x down, fast path vs conv2d [{:?} {dtype:?}]: max_abs = {down:.3e}", device.location());
    assert!(down < 1e-6, "{down:e}");
    // The general filter keeps the sizes: 2x up, 2x down.
    let g = ResampleFilter::from_taps(&[1.0, 3.0, 3.0, 1.0], dtype, &device).unwrap();
    assert_eq!(g.upsample(&x, g.default_padding()).unwrap().dims(), &[2, 3, 16, 12]);
    assert_eq!(g.downsample(&x, g.default_padding()).unwrap().dims(), &[2, 3, 4, 3]);
    let sum: f64 = host_vec(&g.tensor().sum_all().unwrap())[0];
    assert!((sum - 1.0).abs() < 1e-7);
}

#[test]
fn labels() {
    let (dtype, device) = (test_dtype(), test_device());
    let t = one_hot_labels(&[Some(2), None, Some(0)], 3, dtype, &device).unwrap();
    assert_eq!((t.dtype(), host_vec(&t)), (dtype, vec![0., 0., 1., 0., 0., 0., 1., 0., 0.]));
    let e = one_hot_labels(&[Some(3)], 3, dtype, &device).unwrap_err();
    assert!(e.downcast_ref::<InputError>().is_some());

    let mut w = HashMap::new();
    w.insert("weight".to_string(), Tensor::new(&[[1f32, 1.], [2., 2.], [9., 9.]], &Device::Cpu).unwrap());
    let with_null = boot_models::load_strict("t", w.clone(), dtype, &device, |vb| Ok(ClassEmbeddingTable::new(vb, 3, 2, Some(2))?)).unwrap();
    assert_eq!(host_vec(&with_null.forward(&[Some(1), None]).unwrap()), vec![2., 2., 9., 9.]);
    let zero_null = boot_models::load_strict("t", w, dtype, &device, |vb| Ok(ClassEmbeddingTable::new(vb, 3, 2, None)?)).unwrap();
    assert_eq!(host_vec(&zero_null.forward(&[None, Some(0)]).unwrap()), vec![0., 0., 1., 1.]);
}

#[test]
fn group_norm_matches_definition() {
    let x = randn(&[2, 8, 3, 3], 13);
    let mut w = HashMap::new();
    w.insert("weight".to_string(), randn(&[8], 14));
    w.insert("bias".to_string(), randn(&[8], 15));
    let gn = boot_models::load_strict("gn", w.clone(), DType::F64, &dev(), |vb| Ok(GroupNorm::edm(vb, 8, 1e-5)?)).unwrap();
    assert_eq!(gn.num_groups(), 2);
    let out = gn.forward(&x).unwrap();
    let xv: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
    let ov: Vec<f64> = out.flatten_all().unwrap().to_vec1().unwrap();
    let (wv, bv): (Vec<f64>, Vec<f64>) = (w["weight"].to_vec1().unwrap(), w["bias"].to_vec1().unwrap());
    let per_group = 4 * 9;
    for b in 0..2 {
        for g in 0..2 {
            let base = b * 72 + g * per_group;
            let vals = &xv[base..base + per_group];
            let mean = vals.iter().sum::<f64>() / per_group as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / per_group as f64;
            for (i, v) in vals.iter().enumerate() {
                let ch = g * 4 + i / 9;
                let want = (v - mean) / (var + 1e-5).sqrt() * wv[ch] + bv[ch];
                assert!((ov[base + i] - want).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn frozen_overlay_keeps_buffers_out_of_the_varmap() {
    let (dtype, device) = (test_dtype(), test_device());
    let vm = VarMap::new();
    let mut frozen = HashMap::new();
    frozen.insert("up.resample_filter".to_string(), Tensor::full(0.25f32, (1, 1, 2, 2), &device).unwrap().to_dtype(dtype).unwrap());
    let vb = FrozenOverlay::new(frozen, VarBuilder::from_varmap(&vm, dtype, &device).pp("s")).into_var_builder(&device);
    let f = ResampleFilter::load(vb.pp("up"), 2).unwrap();
    assert_eq!(f.size(), 2);
    let lin = Linear::new(vb.pp("lin"), 3, 2, true).unwrap();
    assert_eq!(lin.out_features(), 2);
    let mut names: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, vec!["s.lin.bias", "s.lin.weight"]);
    assert!(ResampleFilter::load(vb.pp("missing"), 2).is_ok(), "non-frozen names go to the VarMap");
    assert!(vm.data().lock().unwrap().contains_key("s.missing.resample_filter"));
}
