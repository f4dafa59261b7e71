//! The one policy for upstream JSON configs (`boot_models::config`): a bad value is an input error naming
//! the file and the key; keys the struct does not read are not fatal.

use boot_models::diffusers::UNet2DConfig;
use boot_models::edm::NetworkSpec;
use boot_sdk::InputError;

#[test]
fn bad_value_names_file_and_key() {
    let e = UNet2DConfig::from_json_str(r#"{"block_out_channels": [32, "x"]}"#, "config.json").unwrap_err();
    let ie = e.downcast_ref::<InputError>().expect("an input error");
    assert_eq!((ie.source_name.as_str(), ie.key.as_str()), ("config.json", "block_out_channels[1]"), "{ie}");
    assert!(!ie.to_string().contains('\n'), "one line: {ie}");
}

#[test]
fn unknown_keys_are_not_fatal() {
    let cfg = UNet2DConfig::from_json_str(r#"{"_class_name": "UNet2DModel", "some_new_option": 1, "block_out_channels": [32]}"#, "config.json").expect("parses");
    assert_eq!(cfg.block_out_channels, vec![32]);
    let json = r#"{"class_name": "SongUNet", "extra": true, "constructor_kwargs": {"img_resolution": 16, "in_channels": 3, "out_channels": 3}}"#;
    assert_eq!(NetworkSpec::from_json_str(json, "net.json").expect("parses").arch.class_name(), "SongUNet");
}

#[test]
fn missing_file_names_the_file() {
    let e = boot_models::config::read_json::<UNet2DConfig>(std::path::Path::new("/nonexistent/config.json"), &[]).unwrap_err();
    let ie = e.downcast_ref::<InputError>().expect("an input error");
    assert_eq!(ie.source_name, "/nonexistent/config.json");
}
