//! The real EDM configurations build with the parameter counts of the EDM paper (Karras et al. 2022,
//! Table 7: DDPM++ CIFAR-10 55.73M, ADM ImageNet-64 295.90M). No weights needed.

use boot_plugin_edm::config::NetworkSpec;
use boot_plugin_edm::student::is_buffer;
use boot_plugin_edm::EdmDenoiser;
use boot_sdk::candle::{DType, Device};
use boot_sdk::candle_nn::{VarBuilder, VarMap};

fn parameters(json: &str) -> usize {
    let spec = NetworkSpec::from_json_str(json, "test.json").expect("spec");
    let vm = VarMap::new();
    EdmDenoiser::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &spec, None).expect("build");
    let data = vm.data().lock().unwrap();
    data.iter().filter(|(k, _)| !is_buffer(k)).map(|(_, v)| v.elem_count()).sum()
}

/// `edm-cifar10-32x32-uncond-vp.pkl`'s constructor arguments (train.py `--arch=ddpmpp --precond=vp`).
const DDPMPP_CIFAR: &str = r#"{"class_name": "VPPrecond", "constructor_kwargs": {"img_resolution": 32, "img_channels": 3, "label_dim": 0,
  "use_fp16": false, "model_type": "SongUNet", "embedding_type": "positional", "encoder_type": "standard", "decoder_type": "standard",
  "channel_mult_noise": 1, "resample_filter": [1, 1], "model_channels": 128, "channel_mult": [2, 2, 2], "augment_dim": 9, "dropout": 0.13}}"#;

/// `edm-cifar10-32x32-cond-ve.pkl` (`--arch=ncsnpp --precond=ve --cond=1`).
const NCSNPP_CIFAR: &str = r#"{"class_name": "VEPrecond", "constructor_kwargs": {"img_resolution": 32, "img_channels": 3, "label_dim": 10,
  "use_fp16": false, "model_type": "SongUNet", "embedding_type": "fourier", "encoder_type": "residual", "decoder_type": "standard",
  "channel_mult_noise": 2, "resample_filter": [1, 3, 3, 1], "model_channels": 128, "channel_mult": [2, 2, 2], "augment_dim": 9, "dropout": 0.13}}"#;

/// `edm-imagenet-64x64-cond-adm.pkl` (`--arch=adm --precond=edm --cond=1`).
const ADM_IMAGENET64: &str = r#"{"class_name": "EDMPrecond", "constructor_kwargs": {"img_resolution": 64, "img_channels": 3, "label_dim": 1000,
  "use_fp16": false, "model_type": "DhariwalUNet", "model_channels": 192, "channel_mult": [1, 2, 3, 4], "augment_dim": 0, "dropout": 0.1}}"#;

#[test]
fn ddpmpp_cifar10_has_55_73m_parameters() {
    let n = parameters(DDPMPP_CIFAR);
    println!("DDPM++ CIFAR-10: {n} parameters");
    assert_eq!((n as f64 / 1e4).round() / 100.0, 55.73);
}

#[test]
fn ncsnpp_cifar10_builds() {
    let n = parameters(NCSNPP_CIFAR);
    println!("NCSN++ CIFAR-10 (cond): {n} parameters");
    assert!((56.0e6..56.5e6).contains(&(n as f64)));
}

#[test]
fn adm_imagenet64_has_295_90m_parameters() {
    let n = parameters(ADM_IMAGENET64);
    println!("ADM ImageNet-64: {n} parameters");
    assert_eq!((n as f64 / 1e4).round() / 100.0, 295.90);
}
