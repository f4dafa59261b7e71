//! transformers' `T5EncoderModel` (5.17.0) against the port (`scripts/fixtures/make_t5_fixtures.py`): a random
//! T5 v1.1 encoder (gated-gelu, 32 buckets up to distance 128, vocab 32128) on three prompts tokenized and
//! padded to 77 as IFPipeline does, and a random original-T5 encoder (relu, 3 blocks, inner width 30 != d_model
//! 24) on random ids with padding; `last_hidden_state` with the padding mask compared in f32 and bf16, f16
//! refused, the relative position buckets, the tied embedding's two keys, and config errors. Runs on
//! `BOOT_TEST_DEVICE` (CPU by default).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use boot_models::load_strict;
use boot_models::transformers::t5_encoder::relative_position_bucket;
use boot_models::transformers::{T5Config, T5EncoderModel, T5Tokenizer};
use boot_sdk::candle::{DType, Device, Tensor};

const NAMES: [&str; 2] = ["t5_encoder", "t5_encoder_relu"];

fn folder(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("transformers").join(name)
}

fn weights(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&folder(name).join("model.safetensors"), &Device::Cpu).expect("weights")
}

fn io(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&folder(name).join("io.safetensors"), &Device::Cpu).expect("io")
}

fn config(name: &str) -> T5Config {
    T5Config::from_json_file(&folder(name).join("config.json")).expect("config")
}

fn build(name: &str, tensors: HashMap<String, Tensor>, dtype: DType) -> boot_sdk::Result<T5EncoderModel> {
    let cfg = config(name);
    load_strict(name, T5EncoderModel::canonical_tensors(tensors), dtype, &common::test_device(), |vb| T5EncoderModel::new(vb, &cfg))
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let a = common::host_f64(a);
    let b = common::host_f64(b);
    let d = (&a - &b).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let n = b.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    (d / n).sqrt()
}

/// `last_hidden_state` of fixture `name` in `dtype`, with the padding mask, and its error to transformers'.
fn run(name: &str, dtype: DType) -> f64 {
    let model = build(name, weights(name), dtype).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let io = io(name);
    let device = common::test_device();
    let ids = io["input_ids"].to_device(&device).unwrap();
    let mask = io["attention_mask"].to_device(&device).unwrap();
    let out = model.forward(&ids, Some(&mask)).unwrap();
    assert_eq!(out.dtype(), dtype);
    assert_eq!(out.dims(), io["last_hidden_state"].dims());
    rel_err(&out, &io["last_hidden_state"])
}

#[test]
fn last_hidden_state_matches_transformers_f32() {
    for name in NAMES {
        let err = run(name, DType::F32);
        println!("{name} f32: rel err {err:.2e}");
        assert!(err <= 1e-4, "{name}: {err:e}");
    }
}

#[test]
fn last_hidden_state_in_bf16() {
    for name in NAMES {
        let err = run(name, DType::BF16);
        println!("{name} bf16: rel err {err:.2e} (vs transformers' f32)");
        assert!(err <= 2e-2, "{name}: {err:e}");
    }
}

#[test]
fn f16_is_refused_in_one_line() {
    let err = format!("{:#}", build("t5_encoder", weights("t5_encoder"), DType::F16).unwrap_err());
    println!("{err}");
    assert!(err.contains("f16") && err.contains("T5 overflows in float16; use bf16 or f32"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(T5EncoderModel::check_dtype(DType::F16).is_err());
    for ok in [DType::BF16, DType::F32, DType::F64] {
        T5EncoderModel::check_dtype(ok).unwrap();
    }
}

/// `None` is "attend to everything": the first row of `t5_encoder` fills all 77 positions (mask all 1).
#[test]
fn no_mask_is_all_ones() {
    let model = build("t5_encoder", weights("t5_encoder"), DType::F32).unwrap();
    let io = io("t5_encoder");
    let device = common::test_device();
    let ids = io["input_ids"].narrow(0, 0, 1).unwrap().to_device(&device).unwrap();
    let mask = io["attention_mask"].narrow(0, 0, 1).unwrap();
    assert_eq!(mask.sum_all().unwrap().to_scalar::<i64>().unwrap(), 77);
    let with = model.forward(&ids, Some(&mask.to_device(&device).unwrap())).unwrap();
    let without = model.forward(&ids, None).unwrap();
    assert_eq!(rel_err(&without, &with), 0.0);
    assert!(rel_err(&without, &io["last_hidden_state"].narrow(0, 0, 1).unwrap()) <= 1e-4);
    let bad = Tensor::ones((1, 5), DType::I64, &device).unwrap();
    assert!(model.forward(&ids, Some(&bad)).unwrap_err().to_string().contains("attention_mask has shape [1, 5]"));
}

#[test]
fn relative_position_buckets_match_transformers() {
    for name in NAMES {
        let cfg = config(name);
        let want: Vec<i64> = io(name)["relative_position_bucket"].to_vec1().unwrap();
        let got: Vec<i64> = (-300..=300)
            .map(|r| relative_position_bucket(r, cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance) as i64)
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

/// transformers ties `shared.weight` and `encoder.embed_tokens.weight`: a file with either loads (with both,
/// `canonical_tensors` drops the duplicate); without `canonical_tensors` the duplicate is an unexpected tensor.
#[test]
fn either_embedding_key_loads() {
    let base = run("t5_encoder", DType::F32);
    let mut renamed = weights("t5_encoder");
    let table = renamed.remove("shared.weight").unwrap();
    renamed.insert("encoder.embed_tokens.weight".into(), table.clone());
    let model = build("t5_encoder", renamed.clone(), DType::F32).unwrap();
    let io = io("t5_encoder");
    let out = model.forward(&io["input_ids"].to_device(&common::test_device()).unwrap(), Some(&io["attention_mask"].to_device(&common::test_device()).unwrap())).unwrap();
    assert_eq!(rel_err(&out, &io["last_hidden_state"]), base);

    renamed.insert("shared.weight".into(), table);
    renamed.insert("decoder.final_layer_norm.weight".into(), Tensor::ones(32, DType::F32, &Device::Cpu).unwrap());
    build("t5_encoder", renamed.clone(), DType::F32).unwrap();
    let cfg = config("t5_encoder");
    let err = load_strict("model.safetensors", renamed, DType::F32, &Device::Cpu, |vb| T5EncoderModel::new(vb, &cfg)).unwrap_err().to_string();
    assert!(err.contains("decoder.final_layer_norm.weight") && err.contains("2 unexpected"), "{err}");
}

/// The tokenizer in front of the encoder: the fixture's ids and mask are transformers' tokenizer output.
#[test]
fn encoder_inputs_are_the_tokenizers() {
    let tok = T5Tokenizer::from_folder(&folder("t5_tokenizer")).unwrap();
    let io = io("t5_encoder");
    let ids: Vec<Vec<i64>> = io["input_ids"].to_vec2().unwrap();
    let mask: Vec<Vec<i64>> = io["attention_mask"].to_vec2().unwrap();
    let landscape = ["a beautiful landscape with snowy mountains, rivers and pine trees at sunset"; 6].join(" ");
    let prompts = [landscape.as_str(), "a photo of an astronaut riding a horse on mars", ""];
    for (i, p) in prompts.iter().enumerate() {
        let e = tok.encode(p).unwrap();
        assert_eq!(e.ids.iter().map(|&v| v as i64).collect::<Vec<_>>(), ids[i], "{p:?}");
        assert_eq!(e.attention_mask.iter().map(|&v| v as i64).collect::<Vec<_>>(), mask[i], "{p:?}");
    }
}

#[test]
fn config_errors_name_the_file_and_key() {
    let text = std::fs::read_to_string(folder("t5_encoder").join("config.json")).unwrap();
    let cfg = T5Config::from_json_str(&text, "config.json").unwrap();
    assert_eq!((cfg.d_model, cfg.d_kv, cfg.d_ff, cfg.num_layers, cfg.num_heads, cfg.vocab_size), (32, 8, 37, 2, 4, 32128));
    assert_eq!((cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance, cfg.layer_norm_epsilon), (32, 128, 1e-6));
    for (proj, want) in [("gated-tanh", "unknown activation \"tanh\""), ("gated-gelu-x", "expected `ACT` or `gated-ACT`"), ("glu-relu", "expected `ACT` or `gated-ACT`")] {
        let bad = text.replace("\"gated-gelu\"", &format!("{proj:?}"));
        let err = T5Config::from_json_str(&bad, "text_encoder/config.json").unwrap_err().to_string();
        assert!(err.contains("text_encoder/config.json: feed_forward_proj: ") && err.contains(want), "{err}");
    }
    let bad = text.replace("\"d_kv\": 8", "\"d_kv\": \"8\"");
    let err = T5Config::from_json_str(&bad, "text_encoder/config.json").unwrap_err().to_string();
    assert!(err.contains("text_encoder/config.json: d_kv"), "{err}");
    let err = T5Config::from_json_file(&folder("t5_encoder").join("missing.json")).unwrap_err().to_string();
    assert!(err.contains("missing.json") && err.contains("cannot read file"), "{err}");
}
