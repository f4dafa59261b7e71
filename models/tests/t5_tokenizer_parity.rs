//! transformers' `T5Tokenizer` (5.17.0) against the port (`scripts/fixtures/make_t5_fixtures.py`): the real T5
//! v1.1 SentencePiece vocabulary, 23 prompts, `padding="max_length", max_length=77, truncation=True,
//! add_special_tokens=True`, ids and attention masks compared exactly from `tokenizer.json` and from
//! `spiece.model`, and the errors of missing and broken files.

use std::fs;
use std::path::{Path, PathBuf};

use boot_models::transformers::{T5Tokenizer, T5_MAX_LENGTH};
use boot_sdk::serde_json::{self, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("transformers").join("t5_tokenizer")
}

/// A temporary tokenizer folder holding copies of the fixtures' `files`.
fn folder_of(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

struct Case {
    prompt: String,
    ids: Vec<u32>,
    mask: Vec<u32>,
}

fn cases() -> Vec<Case> {
    let v: Value = serde_json::from_str(&fs::read_to_string(fixtures().join("ids.json")).unwrap()).unwrap();
    let list = |c: &Value, k: &str| c[k].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect::<Vec<_>>();
    v["cases"].as_array().unwrap().iter().map(|c| Case { prompt: c["prompt"].as_str().unwrap().into(), ids: list(c, "input_ids"), mask: list(c, "attention_mask") }).collect()
}

/// Every prompt of `ids.json` through `tok` equals transformers' ids and mask.
fn check(tok: &T5Tokenizer, label: &str) {
    assert_eq!(tok.max_length(), T5_MAX_LENGTH);
    let cases = cases();
    assert!(cases.len() >= 15);
    let prompts: Vec<&str> = cases.iter().map(|c| c.prompt.as_str()).collect();
    let batch = tok.encode_batch(&prompts).unwrap();
    for (case, e) in cases.iter().zip(&batch) {
        assert_eq!(e.ids, case.ids, "{label}: {:?}", case.prompt);
        assert_eq!(e.attention_mask, case.mask, "{label}: {:?}", case.prompt);
    }
    let e = tok.encode("a photo of an astronaut").unwrap();
    assert_eq!(&e.ids[..8], &[3, 9, 1202, 13, 46, 30059, 1, 0], "{label}");
    assert_eq!(&e.attention_mask[..8], &[1, 1, 1, 1, 1, 1, 1, 0], "{label}");
}

#[test]
fn tokenizer_json_matches_transformers() {
    check(&T5Tokenizer::from_tokenizer_json(&fixtures().join("tokenizer.json")).unwrap(), "tokenizer.json");
    // A folder with both files reads tokenizer.json.
    check(&T5Tokenizer::from_folder(&fixtures()).unwrap(), "folder");
}

#[test]
fn spiece_model_matches_transformers() {
    check(&T5Tokenizer::from_spiece_model(&fixtures().join("spiece.model")).unwrap(), "spiece.model");
    let dir = folder_of(&["spiece.model"]);
    check(&T5Tokenizer::from_folder(dir.path()).unwrap(), "folder with spiece.model");
}

fn error_of(result: boot_sdk::Result<T5Tokenizer>) -> String {
    let err = format!("{:#}", result.unwrap_err());
    println!("{err}");
    assert!(!err.contains('\n'), "{err}");
    err
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn missing_and_broken_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(T5Tokenizer::from_folder(dir.path()));
    assert!(err.contains("no tokenizer.json or spiece.model"), "{err}");
    let err = error_of(T5Tokenizer::from_spiece_model(&dir.path().join("spiece.model")));
    assert!(err.contains("spiece.model") && err.contains("cannot read file"), "{err}");
    let err = error_of(T5Tokenizer::from_tokenizer_json(&dir.path().join("tokenizer.json")));
    assert!(err.contains("tokenizer.json") && err.contains("cannot read file"), "{err}");

    // spiece.model: cut short, garbage, another model type, a vocabulary without <unk>.
    let spm = fs::read(fixtures().join("spiece.model")).unwrap();
    let path = write(dir.path(), "spiece.model", &spm[..spm.len() / 2]);
    let err = error_of(T5Tokenizer::from_spiece_model(&path));
    assert!(err.contains("spiece.model") && err.contains("not a SentencePiece model"), "{err}");
    let path = write(dir.path(), "spiece.model", b"{\"model\": \"not a protobuf\"}");
    let err = error_of(T5Tokenizer::from_spiece_model(&path));
    assert!(err.contains("spiece.model") && err.contains("not a SentencePiece model"), "{err}");
    let path = write(dir.path(), "spiece.model", &[]);
    let err = error_of(T5Tokenizer::from_spiece_model(&path));
    assert!(err.contains("spiece.model: pieces") && err.contains("no pieces"), "{err}");
    // One piece "<unk>" and trainer_spec { model_type: BPE }.
    let bpe = [0x0a, 0x07, 0x0a, 0x05, b'<', b'u', b'n', b'k', b'>', 0x12, 0x02, 0x18, 0x02];
    let path = write(dir.path(), "spiece.model", &bpe);
    let err = error_of(T5Tokenizer::from_spiece_model(&path));
    assert!(err.contains("spiece.model: trainer_spec.model_type: expected UNIGRAM"), "{err}");
    let path = write(dir.path(), "spiece.model", &bpe[..9]);
    let err = error_of(T5Tokenizer::from_spiece_model(&path));
    assert!(err.contains("spiece.model") && err.contains("\"<pad>\" is not in the vocabulary"), "{err}");

    // tokenizer.json: not JSON, a BPE model, a bad vocabulary entry, a bad charsmap.
    let path = write(dir.path(), "tokenizer.json", b"{\"model\": ");
    let err = error_of(T5Tokenizer::from_tokenizer_json(&path));
    assert!(err.contains("tokenizer.json") && err.contains("not valid JSON"), "{err}");
    let path = write(dir.path(), "tokenizer.json", b"{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
    let err = error_of(T5Tokenizer::from_tokenizer_json(&path));
    assert!(err.contains("tokenizer.json: model.type: expected \"Unigram\""), "{err}");
    let path = write(dir.path(), "tokenizer.json", b"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"<pad>\", 0.0], [\"</s>\"]]}}");
    let err = error_of(T5Tokenizer::from_tokenizer_json(&path));
    assert!(err.contains("tokenizer.json: model.vocab[1]: expected [piece, score]"), "{err}");
    let vocab = "[[\"<pad>\", 0.0], [\"</s>\", 0.0], [\"<unk>\", 0.0], [\"\u{2581}\", -2.0]]";
    let text = format!("{{\"normalizer\": {{\"type\": \"Sequence\", \"normalizers\": [{{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"!!\"}}]}}, \"model\": {{\"type\": \"Unigram\", \"vocab\": {vocab}}}}}");
    let path = write(dir.path(), "tokenizer.json", text.as_bytes());
    let err = error_of(T5Tokenizer::from_tokenizer_json(&path));
    assert!(err.contains("tokenizer.json: normalizer.normalizers[0].precompiled_charsmap"), "{err}");
    // Without a normalizer the pipeline still builds (no charsmap: no rewrites).
    let path = write(dir.path(), "tokenizer.json", format!("{{\"model\": {{\"type\": \"Unigram\", \"vocab\": {vocab}}}}}").as_bytes());
    let tok = T5Tokenizer::from_tokenizer_json(&path).unwrap();
    assert_eq!(&tok.encode("a").unwrap().ids[..3], &[3, 2, 1]);
}
