//! The `AutoencoderKL` decoder against diffusers (`scripts/fixtures/make_pipeline_fixtures.py`): a random
//! two-level VAE saved by `save_pretrained`, loaded from its folder as-is (the decoder's tensors only), and
//! `AutoencoderKL.decode(z).sample` on random latents.

use std::collections::HashMap;
use std::path::PathBuf;

use boot_models::diffusers::{AutoencoderKLConfig, AutoencoderKLDecoder};
use boot_models::load_strict;
use boot_sdk::candle::{DType, Device, Tensor};

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("diffusers").join("autoencoder_kl")
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let n = b.sqr().unwrap().sum_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    (d / n).sqrt()
}

fn decoder() -> AutoencoderKLDecoder {
    let cfg = AutoencoderKLConfig::from_json_file(&folder().join("config.json")).expect("config");
    let path = folder().join("diffusion_pytorch_model.safetensors");
    let all = boot_sdk::io::load_safetensors(&path, &Device::Cpu).expect("weights");
    assert!(all.keys().any(|k| k.starts_with("encoder.")), "the fixture is a whole AutoencoderKL");
    let tensors: HashMap<String, Tensor> = all.into_iter().filter(|(k, _)| AutoencoderKLDecoder::keys(k)).collect();
    load_strict(&path.display().to_string(), tensors, DType::F32, &Device::Cpu, |vb| AutoencoderKLDecoder::new(vb, &cfg)).expect("decoder")
}

#[test]
fn decode_matches_diffusers() {
    let io = boot_sdk::io::load_safetensors(&folder().join("io.safetensors"), &Device::Cpu).expect("io");
    let dec = decoder();
    let x = dec.forward(&io["z"]).unwrap();
    assert_eq!(x.dims(), io["x"].dims());
    let err = rel_err(&x, &io["x"]);
    println!("AutoencoderKL decode: rel err {err:.2e}");
    assert!(err <= 1e-4, "{err:e}");
    // A pipeline's latents are the scaled ones: decode_latents divides by scaling_factor first.
    let scaled = (&io["z"] * dec.config().scaling_factor).unwrap();
    assert!(rel_err(&dec.decode_latents(&scaled).unwrap(), &io["x"]) <= 1e-4);
}

#[test]
fn a_config_without_decoder_blocks_is_refused() {
    let cfg = AutoencoderKLConfig::from_json_str(r#"{"block_out_channels": [8], "up_block_types": ["UpBlock2D"]}"#, "config.json").unwrap();
    let e = load_strict("vae.safetensors", HashMap::new(), DType::F32, &Device::Cpu, |vb| AutoencoderKLDecoder::new(vb, &cfg)).unwrap_err();
    assert!(e.to_string().contains("UpDecoderBlock2D"), "{e}");
}
