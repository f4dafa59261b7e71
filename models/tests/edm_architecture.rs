//! The real EDM configurations build with the parameter counts of the EDM paper (Karras et al. 2022,
//! Table 7: DDPM++ CIFAR-10 55.73M, ADM ImageNet-64 295.90M). No weights needed.

use boot_models::edm::NetworkSpec;
use boot_models::edm::is_buffer;
use boot_models::edm::EdmDenoiser;
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

/// SongUNet paths no reference fixture covers: class labels (`map_label`, scaled, with bias), the `skip`
/// encoder and decoder (with an intermediate `aux_up`), Fourier embedding. Behaviour checks only.
#[test]
fn songunet_labels_and_skip_paths_run() {
    use boot_sdk::candle::Tensor;
    let json = r#"{"class_name": "VEPrecond", "constructor_kwargs": {"img_resolution": 16, "img_channels": 3, "label_dim": 10,
      "model_type": "SongUNet", "embedding_type": "fourier", "channel_mult_noise": 2, "encoder_type": "skip", "decoder_type": "skip",
      "resample_filter": [1, 3, 3, 1], "model_channels": 16, "channel_mult": [1, 2, 2], "num_blocks": 1, "attn_resolutions": [8]}}"#;
    let spec = NetworkSpec::from_json_str(json, "test.json").expect("spec");
    let vm = VarMap::new();
    let den = EdmDenoiser::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &spec, None).expect("build");
    {
        let data = vm.data().lock().unwrap();
        let names: Vec<&String> = data.keys().collect();
        for want in ["model.enc.8x8_aux_down.resample_filter", "model.enc.8x8_aux_skip.weight", "model.dec.8x8_aux_up.resample_filter", "model.dec.4x4_aux_conv.weight", "model.map_label.bias", "model.map_noise.freqs"] {
            assert!(names.iter().any(|n| n.as_str() == want), "missing {want}");
        }
        for (name, var) in data.iter() {
            let v = if name.ends_with("resample_filter") {
                Tensor::from_vec(vec![1f32, 3., 3., 1., 3., 9., 9., 3., 3., 9., 9., 3., 1., 3., 3., 1.], (1, 1, 4, 4), &Device::Cpu).unwrap().affine(1.0 / 64.0, 0.0).unwrap()
            } else {
                (Tensor::randn(0f32, 1f32, var.shape(), &Device::Cpu).unwrap() * 0.2).unwrap()
            };
            var.set(&v).unwrap();
        }
    }
    let x = Tensor::randn(0f32, 1f32, (3, 3, 16, 16), &Device::Cpu).unwrap();
    let sigma = [0.5, 2.0, 10.0];
    let labels = boot_models::one_hot_labels(&[Some(1), None, Some(9)], 10, DType::F32, &Device::Cpu).unwrap();
    let d = den.forward(&x, &sigma, Some(&labels), None).unwrap();
    assert_eq!(d.dims(), &[3, 3, 16, 16]);
    let finite: f32 = d.abs().unwrap().max_keepdim(0).unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    assert!(finite.is_finite());
    // An all-zero label row is what `class_labels = None` feeds; other labels change the output.
    let none = den.forward(&x, &sigma, None, None).unwrap();
    let diff = |a: &Tensor, b: &Tensor| -> f32 { (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap() };
    assert_eq!(diff(&d.get(1).unwrap(), &none.get(1).unwrap()), 0.0);
    assert!(diff(&d.get(0).unwrap(), &none.get(0).unwrap()) > 1e-4);
}
