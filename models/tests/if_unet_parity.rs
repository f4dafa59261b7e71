//! Parity of `boot_models::diffusers::UNet2DConditionModel` in DeepFloyd IF's stage I and stage II
//! configurations with diffusers 0.42.1, on the folders `models/tests/fixtures/diffusers/if_unet_stage{1,2}/`
//! (`scripts/fixtures/make_if_unet_fixtures.py`: `config.json` and `diffusion_pytorch_model.safetensors` as
//! `save_pretrained` writes them, `io.safetensors`): the config read from the file, the weights loaded
//! strictly and unconverted, the text padding mask, stage II's noise-level class embedding.
//! `||out - ref_f32|| / ||ref_f32|| <= 1e-4` in f32 (`BOOT_TEST_DEVICE` / `BOOT_TEST_DTYPE`, see
//! `common/device.rs`), the f64 port against the float64 ground truth on the CPU. Run with `--nocapture` to
//! see the numbers.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use boot_models::diffusers::{ClassLabels, UNet2DConditionConfig, UNet2DConditionModel};
use boot_models::load_strict;
use boot_sdk::candle::{DType, Device, Tensor};
use common::*;

const FAMILY: &str = "diffusers";

/// The fixture folder `name`, its config (read as a teacher reads `unet/config.json`), weights and io.
struct Folder {
    dir: PathBuf,
    cfg: UNet2DConditionConfig,
    weights: HashMap<String, Tensor>,
    io: HashMap<String, Tensor>,
}

fn folder(name: &str) -> Folder {
    let dir = fixture(FAMILY, name);
    let cfg = UNet2DConditionConfig::from_json_file(&dir.join("config.json")).expect("config.json");
    let read = |f: &str| boot_sdk::io::load_safetensors(&dir.join(f), &Device::Cpu).unwrap_or_else(|e| panic!("{f}: {e}"));
    let (weights, io) = (read("diffusion_pytorch_model.safetensors"), read("io.safetensors"));
    Folder { dir, cfg, weights, io }
}

impl Folder {
    fn net(&self, dtype: DType, device: &Device) -> UNet2DConditionModel {
        let source = self.dir.join("diffusion_pytorch_model.safetensors").display().to_string();
        load_strict(&source, self.weights.clone(), dtype, device, |vb| Ok(UNet2DConditionModel::new(vb, &self.cfg)?)).expect("strict load")
    }
}

fn parity(name: &str) {
    let f = folder(name);
    let m = &f.io;
    let (x, ts, ctx, mask) = (t(m, "x"), t(m, "timesteps"), t(m, "encoder_hidden_states"), t(m, "encoder_attention_mask"));
    assert_eq!(m.contains_key("class_labels"), f.cfg.class_embed_type.is_some());

    // f64 port vs the float64 ground truth (CPU).
    let net64 = f.net(DType::F64, &Device::Cpu);
    let noise64 = m.get("class_labels").map(|l| cast(l, DType::F64));
    let labels64 = noise64.as_ref().map(ClassLabels::Timesteps);
    let emb64 = net64.embedding(&cast(ts, DType::F64), Some(&cast(ctx, DType::F64)), labels64, None).unwrap();
    check_f64(&format!("{name} emb"), &emb64, t(m, "emb_f64"), 1e-10);
    let out64 = net64.forward(&cast(x, DType::F64), &cast(ts, DType::F64), &cast(ctx, DType::F64), Some(mask), labels64, None).unwrap();
    check_f64(&format!("{name} sample"), &out64, t(m, "sample_f64"), 1e-9);

    // The test device and dtype vs diffusers' float32 output.
    let net = f.net(test_dtype(), &test_device());
    let (xd, tsd, ctxd) = (dev(x), dev_cond(ts), dev(ctx));
    let noise = m.get("class_labels").map(dev_cond);
    let labels = noise.as_ref().map(ClassLabels::Timesteps);
    let emb = net.embedding(&tsd, Some(&ctxd), labels, None).unwrap();
    check_net(&format!("{name} emb"), &emb, t(m, "emb"), t(m, "emb_f64"));
    if skip_without_conv(name) {
        return;
    }
    let maskd = mask.to_device(&test_device()).unwrap();
    let out = net.forward(&xd, &tsd, &ctxd, Some(&maskd), labels, None).unwrap();
    assert_eq!(out.dims(), &[2, 6, 16, 16], "the full learned-range output: [eps | variance values]");
    check_net(&format!("{name} sample"), &out, t(m, "sample"), t(m, "sample_f64"));
    // The fixture exercises the mask: without it the output is far off.
    let unmasked = net.forward(&xd, &tsd, &ctxd, None, labels, None).unwrap();
    let (rel, _) = diff(&unmasked, t(m, "sample"));
    println!("PARITY {name}: without the mask rel_err = {rel:.3e}");
    assert!(rel > 1e-2, "{name}: the mask changes the output by only {rel:.3e}");
}

/// Stage I (IFPipeline's UNet): text pooling, `encoder_hid_proj`, self-and-cross added-KV attention with a
/// padded text.
#[test]
fn if_unet_stage1() {
    let f = folder("if_unet_stage1");
    assert_eq!(f.cfg.addition_embed_type.as_deref(), Some("text"));
    parity("if_unet_stage1");
}

/// Stage II (IFSuperResolutionPipeline's UNet): 6 input channels, the noise level through
/// `class_embed_type = "timestep"`, `time_embedding_act_fn`, `resnet_skip_time_act`, the scale factors,
/// `only_cross_attention` (the mid block following it), `layers_per_block` per block.
#[test]
fn if_unet_stage2() {
    let f = folder("if_unet_stage2");
    assert!(f.cfg.resnet_skip_time_act && f.cfg.mid_only_cross_attention() && f.cfg.class_embed_type.as_deref() == Some("timestep"));
    parity("if_unet_stage2");
}

/// Class labels of the wrong kind, or missing, and a mask of the wrong shape are errors.
#[test]
fn if_unet_input_errors() {
    let f = folder("if_unet_stage2");
    let net = f.net(DType::F32, &Device::Cpu);
    let m = &f.io;
    let (x, ts, ctx) = (t(m, "x"), &cast(t(m, "timesteps"), DType::F32), t(m, "encoder_hidden_states"));
    let e = net.embedding(ts, Some(ctx), None, None).unwrap_err().to_string();
    assert!(e.contains("class_labels should be provided"), "{e}");
    let e = net.embedding(ts, Some(ctx), Some(ClassLabels::Rows(&[Some(1), Some(2)])), None).unwrap_err().to_string();
    assert!(e.contains("not table rows"), "{e}");
    let noise = cast(t(m, "class_labels"), DType::F32);
    let e = net.embedding(ts, None, Some(ClassLabels::Timesteps(&noise)), None).unwrap_err().to_string();
    assert!(e.contains("needs the text states"), "{e}");
    let short = t(m, "encoder_attention_mask").narrow(1, 0, 10).unwrap();
    let e = net.forward(x, ts, ctx, Some(&short), Some(ClassLabels::Timesteps(&noise)), None).unwrap_err().to_string();
    assert!(e.contains("encoder_attention_mask has shape"), "{e}");
}

/// A config key this port still does not build gives one line naming the file and the key.
#[test]
fn if_unet_unsupported_keys() {
    let path = fixture(FAMILY, "if_unet_stage1").join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let source = path.display().to_string();
    let cases: [(&str, boot_sdk::serde_json::Value, &str); 9] = [
        ("addition_embed_type", "text_time".into(), "addition_embed_type"),
        ("encoder_hid_dim_type", "image_proj".into(), "encoder_hid_dim_type"),
        ("class_embed_type", "projection".into(), "class_embed_type"),
        ("cross_attention_norm", "layer_norm".into(), "cross_attention_norm"),
        ("dual_cross_attention", true.into(), "dual_cross_attention"),
        ("time_cond_proj_dim", 8.into(), "time_cond_proj_dim"),
        ("mid_block_type", "UNetMidBlock2D".into(), "mid_block_type"),
        ("down_block_types", boot_sdk::serde_json::json!(["ResnetDownsampleBlock2D", "KCrossAttnDownBlock2D"]), "down_block_types[1]"),
        ("cross_attention_dim", boot_sdk::serde_json::json!([32, 32]), "cross_attention_dim"),
    ];
    for (key, value, named) in cases {
        let mut json: boot_sdk::serde_json::Value = boot_sdk::serde_json::from_str(&text).unwrap();
        json[key] = value;
        let e = UNet2DConditionConfig::from_json_str(&json.to_string(), &source).unwrap_err();
        let line = e.downcast_ref::<boot_sdk::InputError>().unwrap_or_else(|| panic!("{key}: not an input error: {e}")).to_string();
        println!("{line}");
        assert!(line.starts_with(&format!("{source}: {named}: ")) && line.contains("not supported") && !line.contains('\n'), "{key}: {line}");
    }
    // The real files parse.
    for name in ["if_unet_stage1", "if_unet_stage2"] {
        UNet2DConditionConfig::from_json_file(&fixture(FAMILY, name).join("config.json")).expect(name);
    }
}
