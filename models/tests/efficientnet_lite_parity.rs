//! EfficientNet-Lite (the FD feature network) against lukemelas' EfficientNet-PyTorch (fixtures from
//! `scripts/fixtures/make_fd_fixtures.py`): the input transform, a tiny random-weight network, and the real
//! ImageNet Lite0 when its weights are present (`BOOT__EVAL__FD_NETWORK`, else
//! `~/.cache/boot/fd/efficientnet-lite0.safetensors` from `scripts/fd/fetch_efficientnet_lite0.sh`).

mod common;

use std::path::PathBuf;

use boot_models::efficientnet_lite::{imagenet_input, EfficientNetLite, EfficientNetLiteConfig};
use boot_sdk::candle::{DType, Device};
use common::*;

const FAMILY: &str = "efficientnet_lite";

fn tiny_config() -> EfficientNetLiteConfig {
    boot_sdk::serde_json::from_value(config(FAMILY, "tiny")).expect("tiny config")
}

#[test]
fn preprocess_matches_torch_interpolate_antialias() {
    let io = boot_sdk::io::load_safetensors(&fixture(FAMILY, "preprocess.safetensors"), &Device::Cpu).unwrap();
    for name in ["gray", "rgb"] {
        let x = t(&io, name);
        let out = imagenet_input(&dev(x), 40).unwrap();
        check(&format!("preprocess {name}"), &out, t(&io, &format!("{name}_out")), t(&io, &format!("{name}_out_f64")));
        let out64 = imagenet_input(&x.to_dtype(DType::F64).unwrap(), 40).unwrap();
        check_f64(&format!("preprocess {name}"), &out64, t(&io, &format!("{name}_out_f64")), 1e-12);
    }
}

#[test]
fn tiny_random_network_matches_pytorch() {
    if skip_without_conv("tiny_random_network_matches_pytorch") {
        return;
    }
    let cfg = tiny_config();
    let io = io(FAMILY, "tiny");
    let x = t(&io, "x");
    let net = load(FAMILY, "tiny", |vb| EfficientNetLite::new(vb, &cfg));
    let input = imagenet_input(&dev(x), cfg.image_size).unwrap();
    check_net("tiny features", &net.features(&input).unwrap(), t(&io, "features_f32"), t(&io, "features_f64"));
    check_net("tiny logits", &net.forward(&input).unwrap(), t(&io, "logits_f32"), t(&io, "logits_f64"));

    let net64 = load_f64(FAMILY, "tiny", |vb| EfficientNetLite::new(vb, &cfg));
    let input64 = imagenet_input(&x.to_dtype(DType::F64).unwrap(), cfg.image_size).unwrap();
    check_f64("tiny features", &net64.features(&input64).unwrap(), t(&io, "features_f64"), 1e-9);
    check_f64("tiny logits", &net64.forward(&input64).unwrap(), t(&io, "logits_f64"), 1e-9);
}

/// The fetched Lite0 weights, if any.
fn lite0_weights() -> Option<PathBuf> {
    let path = match std::env::var_os("BOOT__EVAL__FD_NETWORK") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/boot/fd/efficientnet-lite0.safetensors"),
    };
    path.is_file().then_some(path)
}

#[test]
fn lite0_imagenet_weights_match_pytorch() {
    let Some(path) = lite0_weights() else {
        println!("SKIP lite0_imagenet_weights_match_pytorch: no weights (run scripts/fd/fetch_efficientnet_lite0.sh or set BOOT__EVAL__FD_NETWORK)");
        return;
    };
    if skip_without_conv("lite0_imagenet_weights_match_pytorch") {
        return;
    }
    let cfg = EfficientNetLiteConfig::lite0();
    let tensors = boot_sdk::io::load_safetensors(&path, &Device::Cpu).unwrap();
    let net = boot_models::load_strict(&path.display().to_string(), tensors, test_dtype(), &test_device(), |vb| Ok(EfficientNetLite::new(vb, &cfg)?)).unwrap();
    let io = io(FAMILY, "lite0");
    let input = imagenet_input(&dev(t(&io, "x")), cfg.image_size).unwrap();
    let features = net.features(&input).unwrap();
    assert_eq!(features.dims(), &[3, 1280]);
    check_net("lite0 features", &features, t(&io, "features_f32"), t(&io, "features_f32"));
    check_net("lite0 logits", &net.forward(&input).unwrap(), t(&io, "logits_f32"), t(&io, "logits_f32"));
}
