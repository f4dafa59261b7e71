//! transformers' `CLIPTextModel` (5.17.0) against the port (`scripts/fixtures/make_pipeline_fixtures.py`):
//! random 2- and 3-layer encoders with `quick_gelu` (SD 1.x) and exact `gelu` (SD 2.x), token ids padded to 77
//! with the end token as the pipelines pad, `last_hidden_state` compared.

use std::path::PathBuf;

use boot_models::load_strict;
use boot_models::transformers::{ClipTextConfig, ClipTextModel};
use boot_sdk::candle::{DType, Device, Tensor};

fn folder(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("transformers").join(name)
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let n = b.sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    (d / n).sqrt()
}

#[test]
fn last_hidden_state_matches_transformers() {
    for name in ["clip_text_gelu", "clip_text_quick_gelu"] {
        let cfg = ClipTextConfig::from_json_file(&folder(name).join("config.json")).expect("config");
        let path = folder(name).join("model.safetensors");
        let tensors = ClipTextModel::canonical_tensors(boot_sdk::io::load_safetensors(&path, &Device::Cpu).expect("weights"));
        let model = load_strict(&path.display().to_string(), tensors, DType::F32, &Device::Cpu, |vb| ClipTextModel::new(vb, &cfg)).expect("model");
        let io = boot_sdk::io::load_safetensors(&folder(name).join("io.safetensors"), &Device::Cpu).expect("io");
        let out = model.forward(&io["input_ids"]).unwrap();
        let err = rel_err(&out, &io["last_hidden_state"]);
        println!("{name}: rel err {err:.2e}");
        assert!(err <= 1e-4, "{name}: {err:e}");
    }
}

#[test]
fn too_many_tokens_is_an_error() {
    let cfg = ClipTextConfig::from_json_file(&folder("clip_text_gelu").join("config.json")).unwrap();
    let path = folder("clip_text_gelu").join("model.safetensors");
    let tensors = ClipTextModel::canonical_tensors(boot_sdk::io::load_safetensors(&path, &Device::Cpu).unwrap());
    let model = load_strict("m", tensors, DType::F32, &Device::Cpu, |vb| ClipTextModel::new(vb, &cfg)).unwrap();
    let ids = Tensor::zeros((1, 78), DType::I64, &Device::Cpu).unwrap();
    assert!(model.forward(&ids).unwrap_err().to_string().contains("78 tokens"));
}
