//! Reading an upstream JSON config (diffusers' `config.json`, the EDM converter's JSON), one policy for all:
//!
//! - a file that cannot be read, is not JSON or holds a bad value is one [`InputError`] naming the file and
//!   the key (the path inside the JSON, e.g. `block_out_channels[1]`);
//! - keys the struct does not know (upstream files carry keys such as `_class_name` that no port reads) are
//!   listed in one `tracing` warning: neither dropped silently nor fatal.
//!
//! Unknown keys are found at the top level of the object, by the field names serde derives for the struct
//! (including renamed fields); a struct that takes every key itself (a `#[serde(flatten)]` map) reports the
//! keys it does not read with [`warn_unknown`].

use std::path::Path;

use boot_sdk::InputError;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::serde_json::{self, Value};

/// Reads the JSON file at `path` as a `T` (see the module docs); `handled` are keys the caller reads itself.
pub fn read_json<T: DeserializeOwned>(path: &Path, handled: &[&str]) -> crate::Result<T> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(shown.clone(), "", format!("cannot read file: {e}")))?;
    parse_json(&text, &shown, handled)
}

/// Parses `text` (read from `source`) as a `T`, as [`read_json`] does.
pub fn parse_json<T: DeserializeOwned>(text: &str, source: &str, handled: &[&str]) -> crate::Result<T> {
    from_json_value(parse_value(text, source)?, source, handled)
}

/// Parses `text` (read from `source`) as JSON; a syntax error names `source`.
pub fn parse_value(text: &str, source: &str) -> crate::Result<Value> {
    Ok(serde_json::from_str(text).map_err(|e| InputError::new(source, "", format!("not valid JSON: {e}")))?)
}

/// Deserializes `value` (read from `source`) as a `T`: a bad value names `source` and its key; keys neither
/// `T` nor `handled` knows are listed in one warning.
pub fn from_json_value<T: DeserializeOwned>(value: Value, source: &str, handled: &[&str]) -> crate::Result<T> {
    let unknown: Vec<String> = match (&value, struct_fields::<T>()) {
        (Value::Object(map), Some(fields)) => map.keys().filter(|k| !fields.contains(&k.as_str()) && !handled.contains(&k.as_str())).cloned().collect(),
        _ => Vec::new(),
    };
    let parsed = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        };
        InputError::new(source, key, e.into_inner().to_string())
    })?;
    warn_unknown(source, &unknown);
    Ok(parsed)
}

/// Lists `keys` of `source` that nothing reads in one warning (none: no warning).
pub fn warn_unknown<K: AsRef<str>>(source: &str, keys: &[K]) {
    if !keys.is_empty() {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        tracing::warn!("{source}: ignoring keys this port does not read: {}", keys.join(", "));
    }
}

/// The field names serde derives for the struct `T`, or `None` when `T` is no plain struct.
fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    // The recorder always fails, after noting the field list if `T` asks for a struct.
    let _ = T::deserialize(FieldRecorder(&mut fields));
    fields
}

/// A deserializer that only notes the field list a derived `Deserialize` passes to `deserialize_struct`.
struct FieldRecorder<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, fields: &'static [&'static str], _visitor: V) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
