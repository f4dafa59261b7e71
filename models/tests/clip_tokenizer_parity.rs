//! transformers' `CLIPTokenizer` (5.17.0) against the port (`scripts/fixtures/make_tokenizer_fixtures.py`): the
//! real SD CLIP BPE, 29 prompts, `padding="max_length", max_length=77, truncation=True`, ids compared exactly
//! for the four setups of `ids.json` (SD 2.x's and SD 1.x's configs, over `vocab.json` + `merges.txt` and over
//! `tokenizer.json`), and the errors of broken folders.

use std::fs;
use std::path::{Path, PathBuf};

use boot_models::transformers::ClipTokenizer;
use boot_sdk::serde_json::{self, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("transformers").join("clip_tokenizer")
}

/// A temporary tokenizer folder holding copies of the fixtures' `files` (`folder/name`).
fn folder_of(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let src = fixtures().join(f);
        fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    dir
}

const SD2_CONFIGS: [&str; 2] = ["sd2/tokenizer_config.json", "sd2/special_tokens_map.json"];
const SD1_CONFIGS: [&str; 2] = ["sd1/tokenizer_config.json", "sd1/special_tokens_map.json"];
const VOCAB: [&str; 2] = ["sd2/vocab.json", "sd2/merges.txt"];

struct Case {
    prompt: String,
    ids: Value,
}

fn cases() -> Vec<Case> {
    let v: Value = serde_json::from_str(&fs::read_to_string(fixtures().join("ids.json")).unwrap()).unwrap();
    v["cases"].as_array().unwrap().iter().map(|c| Case { prompt: c["prompt"].as_str().unwrap().to_string(), ids: c.clone() }).collect()
}

fn expected(case: &Case, setup: &str) -> Vec<u32> {
    case.ids[setup].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()
}

/// Every prompt of `ids.json` through the tokenizer of `dir` equals transformers' ids of `setup`.
fn check(dir: &Path, setup: &str, pad_id: u32) {
    let tok = ClipTokenizer::from_folder(dir).unwrap_or_else(|e| panic!("{setup}: {e:#}"));
    assert_eq!((tok.pad_id(), tok.max_length()), (pad_id, 77), "{setup}");
    let cases = cases();
    assert!(cases.len() >= 20);
    let prompts: Vec<&str> = cases.iter().map(|c| c.prompt.as_str()).collect();
    let batch = tok.encode_batch(&prompts).unwrap();
    for (case, ids) in cases.iter().zip(&batch) {
        assert_eq!(ids, &expected(case, setup), "{setup}: {:?}", case.prompt);
    }
    assert_eq!(&tok.encode("a photo of a cat").unwrap()[..8], &[49406, 320, 1125, 539, 320, 2368, 49407, pad_id]);
}

#[test]
fn sd2_folder_matches_transformers() {
    check(&fixtures().join("sd2"), "sd2", 0);
}

#[test]
fn sd1_configs_over_vocab_and_merges_match_transformers() {
    let dir = folder_of(&[&VOCAB[..], &SD1_CONFIGS[..]].concat());
    check(dir.path(), "sd1", 49407);
}

#[test]
fn tokenizer_json_matches_transformers() {
    check(&fixtures().join("sd1_json"), "sd1_json", 49407);
    let dir = folder_of(&[&["sd1_json/tokenizer.json"][..], &SD2_CONFIGS[..]].concat());
    check(dir.path(), "sd2_json", 0);
}

/// transformers 5 writes the merges of a `tokenizer.json` as `["a", "b"]` pairs (the fixture has `"a b"`).
#[test]
fn tokenizer_json_with_merge_pairs() {
    let dir = folder_of(&["sd1_json/tokenizer_config.json"]);
    let mut v: Value = serde_json::from_str(&fs::read_to_string(fixtures().join("sd1_json/tokenizer.json")).unwrap()).unwrap();
    for m in v["model"]["merges"].as_array_mut().unwrap() {
        let (a, b) = m.as_str().unwrap().split_once(' ').unwrap();
        *m = serde_json::json!([a, b]);
    }
    fs::write(dir.path().join("tokenizer.json"), serde_json::to_string(&v).unwrap()).unwrap();
    check(dir.path(), "sd1_json", 49407);
}

/// No configs: the defaults (pad `<|endoftext|>`, 77), as SD 1.x.
#[test]
fn vocab_and_merges_alone_pad_with_the_end_token() {
    let dir = folder_of(&VOCAB);
    let tok = ClipTokenizer::from_folder(dir.path()).unwrap();
    assert_eq!((tok.pad_id(), tok.max_length()), (49407, 77));
    let case = cases().into_iter().find(|c| c.prompt == "a photo of a cat").unwrap();
    assert_eq!(tok.encode(&case.prompt).unwrap(), expected(&case, "sd1"));
}

fn error_of(dir: &Path) -> String {
    let err = format!("{:#}", ClipTokenizer::from_folder(dir).unwrap_err());
    println!("{err}");
    err
}

#[test]
fn broken_folders_name_the_file() {
    let dir = folder_of(&["sd2/vocab.json"]);
    let err = error_of(dir.path());
    assert!(err.contains("merges.txt") && err.contains("cannot read file"), "{err}");

    let dir = folder_of(&["sd2/merges.txt"]);
    let err = error_of(dir.path());
    assert!(err.contains("vocab.json") && err.contains("tokenizer.json"), "{err}");

    let dir = folder_of(&VOCAB);
    fs::write(dir.path().join("vocab.json"), "{\"a\": 0, ").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("vocab.json") && err.contains("not valid JSON"), "{err}");
    fs::write(dir.path().join("vocab.json"), "{\"a\": -1}").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("vocab.json: a: expected a token id"), "{err}");

    let dir = folder_of(&VOCAB);
    fs::write(dir.path().join("merges.txt"), "#version: 0.2\ni n\nt h e\n").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("merges.txt: line 3: expected two symbols"), "{err}");

    let dir = folder_of(&[&VOCAB[..], &SD2_CONFIGS[..]].concat());
    fs::write(dir.path().join("special_tokens_map.json"), "{\"pad_token\": \"<pad>\"}").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("special_tokens_map.json: pad_token: \"<pad>\" is not in the vocabulary"), "{err}");
    fs::write(dir.path().join("special_tokens_map.json"), "[]").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("special_tokens_map.json") && err.contains("expected a JSON object"), "{err}");
    fs::write(dir.path().join("special_tokens_map.json"), "{}").unwrap();
    fs::write(dir.path().join("tokenizer_config.json"), "{\"model_max_length\": 1000000000000000019884624838656}").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("tokenizer_config.json: model_max_length"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("tokenizer.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}").unwrap();
    let err = error_of(dir.path());
    assert!(err.contains("tokenizer.json: model.type"), "{err}");
}
